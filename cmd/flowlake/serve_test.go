package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServe runs `flowlake serve` on a free port until the test ends and
// returns its base URL and stderr.
func startServe(t *testing.T, lake string, env map[string]string) (string, *lockedBuffer, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--lake", lake, "--addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, io.Discard, stderr)
	}()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				stopErr = fmt.Errorf("serve did not stop:\n%s", stderr)
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	re := regexp.MustCompile(`"msg":"serving","url":"(http://[^"]+)"`)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			return m[1], stderr, stop
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v\n%s", err, stderr)
		default:
		}
	}
	t.Fatalf("serve did not start:\n%s", stderr)
	return "", nil, nil
}

func login(t *testing.T, base, user, pw string) (int, string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"username": user, "password": pw})
	resp, err := http.Post(base+"/api/v1/auth/login", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct{ Token string }
	_ = json.NewDecoder(resp.Body).Decode(&s)
	return resp.StatusCode, s.Token
}

// serve creates the admin with a generated password printed once, serves
// the API and the UI, and stops on cancel.
func TestServe(t *testing.T) {
	lake := t.TempDir()
	base, stderr, stop := startServe(t, lake, nil)
	m := regexp.MustCompile(`created user "admin" with password (\S+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no generated password printed:\n%s", stderr)
	}
	pw := m[1]
	if code, tok := login(t, base, "admin", pw); code != 200 || tok == "" {
		t.Fatalf("login with the printed password: %d", code)
	} else {
		req, _ := http.NewRequest("GET", base+"/api/v1/admin/users", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"username":"admin"`) {
			t.Errorf("admin users: %d %s", resp.StatusCode, body)
		}
	}
	for path, want := range map[string]int{"/api/v1/health": 200, "/api/v1/openapi.json": 200, "/api/v1/map": 401, "/api/v1/nope": 404} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	// The UI (or, in a build without it, the page saying how to build it).
	resp, err := http.Get(base + "/explore")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "<html") {
		t.Errorf("GET /explore: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}

	// Started again: the password is not shown again, and still works;
	// FLOWLAKE_ADMIN_PASSWORD does not replace it.
	base, stderr, _ = startServe(t, lake, map[string]string{"FLOWLAKE_ADMIN_PASSWORD": "another-password"})
	if strings.Contains(stderr.String(), "password") {
		t.Errorf("second start mentions a password:\n%s", stderr)
	}
	if code, _ := login(t, base, "admin", pw); code != 200 {
		t.Errorf("login after restart: %d", code)
	}
	if code, _ := login(t, base, "admin", "another-password"); code != 401 {
		t.Errorf("FLOWLAKE_ADMIN_PASSWORD replaced the password: %d", code)
	}

	// A first start with FLOWLAKE_ADMIN_PASSWORD prints none.
	base, stderr, _ = startServe(t, t.TempDir(), map[string]string{"FLOWLAKE_ADMIN_PASSWORD": "chosen-password"})
	if strings.Contains(stderr.String(), "chosen-password") || strings.Contains(stderr.String(), "with password") {
		t.Errorf("the chosen password is printed:\n%s", stderr)
	}
	if code, _ := login(t, base, "admin", "chosen-password"); code != 200 {
		t.Errorf("login with FLOWLAKE_ADMIN_PASSWORD: %d", code)
	}
}

func TestServeUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"serve", "extra"}, nil, "unexpected arguments"},
		{[]string{"serve", "--log-level", "loud"}, nil, "--log-level"},
		{[]string{"serve", "--lake", "s3://"}, nil, "no bucket"},
		{[]string{"serve", "--lake", "LAKE", "--addr", "127.0.0.1:0"}, map[string]string{"FLOWLAKE_JWT_KEY": "zz"}, "FLOWLAKE_JWT_KEY"},
		{[]string{"serve", "--lake", "LAKE", "--addr", "127.0.0.1:0"}, map[string]string{"FLOWLAKE_OIDC_ISSUER": "https://id.example.com"}, "FLOWLAKE_OIDC_CLIENT_ID"},
		{[]string{"serve", "--lake", "LAKE", "--addr", "127.0.0.1:0"}, map[string]string{"FLOWLAKE_ADMIN_PASSWORD": "short"}, "shorter than 8"},
	} {
		args := tc.args
		for i, a := range args {
			if a == "LAKE" {
				args[i] = t.TempDir()
			}
		}
		err := run(t.Context(), args, func(k string) string { return tc.env[k] }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v, want an error saying %q", tc.args, tc.env, err, tc.want)
		}
	}
}
