package filter

import "testing"

func BenchmarkParse(b *testing.B) {
	q := `host ~ "api\." and status >= 500 and not method in (GET, HEAD) and client = 10.0.0.1 and duration > 250ms`
	b.SetBytes(int64(len(q)))
	for b.Loop() {
		if _, err := Parse(q); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEval(b *testing.B) {
	e, err := Parse(`host ~ "api\." and status >= 500 and not method in (GET, HEAD) and client = 10.0.0.1`)
	if err != nil {
		b.Fatal(err)
	}
	row := mapRow{
		s: map[string]string{"host": "api.example.com", "method": "POST", "client_ip": "10.0.0.1"},
		i: map[string]int64{"status": 503},
	}
	for b.Loop() {
		if !e.Eval(row) {
			b.Fatal("no match")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
