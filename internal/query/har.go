package query

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// HAR export limits.
const (
	DefaultHARLimit = 1000
	MaxHARLimit     = 10000
)

// HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/), the parts
// flowlake fills.
type harLog struct {
	Log harBody `json:"log"`
}

type harBody struct {
	Version string     `json:"version"`
	Creator harCreator `json:"creator"`
	Entries []harEntry `json:"entries"`
}

type harCreator struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type harEntry struct {
	StartedDateTime string      `json:"startedDateTime"`
	Time            float64     `json:"time"`
	Request         harRequest  `json:"request"`
	Response        harResponse `json:"response"`
	Cache           struct{}    `json:"cache"`
	Timings         harTimings  `json:"timings"`
	ServerIPAddress string      `json:"serverIPAddress,omitempty"`
	Connection      string      `json:"connection,omitempty"`
	Comment         string      `json:"comment,omitempty"`
}

type harNV struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type harRequest struct {
	Method      string       `json:"method"`
	URL         string       `json:"url"`
	HTTPVersion string       `json:"httpVersion"`
	Cookies     []harNV      `json:"cookies"`
	Headers     []harNV      `json:"headers"`
	QueryString []harNV      `json:"queryString"`
	PostData    *harPostData `json:"postData,omitempty"`
	HeadersSize int          `json:"headersSize"`
	BodySize    int64        `json:"bodySize"`
}

type harPostData struct {
	MimeType string `json:"mimeType"`
	Text     string `json:"text"`
}

type harResponse struct {
	Status      int32      `json:"status"`
	StatusText  string     `json:"statusText"`
	HTTPVersion string     `json:"httpVersion"`
	Cookies     []harNV    `json:"cookies"`
	Headers     []harNV    `json:"headers"`
	Content     harContent `json:"content"`
	RedirectURL string     `json:"redirectURL"`
	HeadersSize int        `json:"headersSize"`
	BodySize    int64      `json:"bodySize"`
}

type harContent struct {
	Size     int64  `json:"size"`
	MimeType string `json:"mimeType"`
	Text     string `json:"text,omitempty"`
}

type harTimings struct {
	Send    float64 `json:"send"`
	Wait    float64 `json:"wait"`
	Receive float64 `json:"receive"`
}

func harHeaders(hs [][2]string) []harNV {
	out := make([]harNV, 0, len(hs))
	for _, h := range hs {
		out = append(out, harNV{Name: h[0], Value: h[1]})
	}
	return out
}

func headerValue(hs [][2]string, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

// HAR writes the exchanges selected by req (in time order, at most
// req.Limit, default 1000, at most 10000) as a HAR 1.2 document to w.
// Bodies are the lake's redacted previews; sizes are the real ones.
func (e *Engine) HAR(ctx context.Context, req Request, w io.Writer) error {
	p, err := e.prepare(req)
	if err != nil {
		return err
	}
	limit := req.Limit
	switch {
	case limit == 0:
		limit = DefaultHARLimit
	case limit < 0 || limit > MaxHARLimit:
		return fmt.Errorf("%w: limit %d: want 1..%d", ErrBadRequest, limit, MaxHARLimit)
	}
	o, _ := parseOrder("ts")
	rows, _, err := e.search(ctx, p, o, nil, limit, true)
	if err != nil {
		return err
	}
	doc := harLog{Log: harBody{Version: "1.2", Creator: harCreator{Name: "flowlake", Version: "1"}, Entries: []harEntry{}}}
	for _, r := range rows {
		d := r.detail
		doc.Log.Entries = append(doc.Log.Entries, harEntryOf(d))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(doc)
}

func harEntryOf(d *Detail) harEntry {
	scheme := "http"
	if d.TLS {
		scheme = "https"
	}
	host := d.Host
	if host == "" {
		host = net.JoinHostPort(d.ServerIP, strconv.Itoa(int(d.ServerPort)))
	}
	target := d.URI
	if !strings.HasPrefix(target, "/") {
		target = "/" + target
	}
	if strings.Contains(d.URI, "://") {
		target = d.URI // absolute-form (proxy requests)
		host, scheme = "", ""
	}
	u := target
	if scheme != "" {
		u = scheme + "://" + host + target
	}
	qs := []harNV{}
	if vals, err := url.ParseQuery(d.Query); err == nil {
		for k, vs := range vals {
			for _, v := range vs {
				qs = append(qs, harNV{Name: k, Value: v})
			}
		}
	}
	version := d.Version
	if version == "" {
		version = "HTTP/1.1"
	}
	ms := float64(d.DurationUS) / 1000
	ent := harEntry{
		StartedDateTime: d.TS.UTC().Format("2006-01-02T15:04:05.000000Z07:00"),
		Time:            ms,
		Request: harRequest{Method: d.Method, URL: u, HTTPVersion: version, Cookies: []harNV{}, Headers: harHeaders(d.ReqHeaders),
			QueryString: qs, HeadersSize: -1, BodySize: d.ReqBodyBytes},
		Response: harResponse{Status: d.Status, StatusText: d.Reason, HTTPVersion: version, Cookies: []harNV{},
			Headers: harHeaders(d.RespHeaders), RedirectURL: headerValue(d.RespHeaders, "Location"), HeadersSize: -1,
			BodySize: d.RespBodyBytes,
			Content:  harContent{Size: d.RespBodyBytes, MimeType: d.ContentType, Text: d.RespBody}},
		Timings:         harTimings{Send: 0, Wait: ms, Receive: 0},
		ServerIPAddress: d.ServerIP,
		Connection:      d.TCPID,
	}
	if d.ReqBody != "" || d.ReqBodyBytes > 0 {
		ent.Request.PostData = &harPostData{MimeType: headerValue(d.ReqHeaders, "Content-Type"), Text: d.ReqBody}
	}
	if d.ParseError != "" {
		ent.Comment = "parse error: " + d.ParseError
	}
	return ent
}
