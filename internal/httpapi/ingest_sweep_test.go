package httpapi_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// ingestTarget is one configured source, with a delivery it accepts.
type ingestTarget struct {
	source, event string
	body          []byte
	// cred gives the headers of valid credentials for body.
	cred func(body []byte) map[string]string
}

func (g ingestTarget) path() string {
	if g.event == "" {
		return "/v1/ingest/" + g.source
	}
	return "/v1/ingest/" + g.source + "/" + g.event
}

// hmacTarget reports whether the target's credential is a signature over
// the body, which cannot be checked on a body that was not read in full.
func (g ingestTarget) hmacTarget() bool {
	return g.source == "case-updates" || g.source == "service-actions"
}

// ingestCase is one hostile delivery. want is the status it must get; 0
// accepts any 2xx or 4xx. kept: a refusal must be kept as a rejected
// request (it passed authentication).
type ingestCase struct {
	name   string
	method string
	path   string // escaped, sent as written
	body   []byte
	header http.Header
	want   int
	cause  string // the problem type's cause, when want is a 4xx
	kept   bool
	// raw, when set, is the whole HTTP/1.1 request, sent on its own
	// connection instead; halfClose then closes the sending side after it,
	// so that the server reads an end to a body that was promised more.
	raw       []byte
	halfClose bool
	// spool: sent to a server whose before-* hooks go to a spool when the
	// database cannot take them in time.
	spool bool
	// echoes: the path holds a credential, which the answer may quote back
	// to the sender that sent it; the log must still not hold it.
	echoes bool
}

// TestHostileIngestSweep sends every configured source hostile deliveries:
// each gets a 4xx problem naming its cause, kept as a rejected request when
// it passed authentication, or a 2xx with the body stored byte for byte;
// never a 5xx, and no credential reaches the server's log.
func TestHostileIngestSweep(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	b := setup(t, readKeysOpt, func(o *setupOpts) { o.logs = &logs })
	spooling := setup(t, readKeysOpt, func(o *setupOpts) { o.logs, o.spool = &logs, true })

	targets := []ingestTarget{
		{"case-updates", "", []byte(`{"event":"ESCALATE_CASE","caseId":"c-1"}`),
			func(body []byte) map[string]string {
				return map[string]string{"x-cv-signature": hexHMAC(cuSecret, body)}
			}},
		{"service-actions", "after-resolve", []byte(`{"caseId":"c-2"}`),
			func(body []byte) map[string]string {
				return map[string]string{"Authorization": "HMAC " + b64HMAC(saSecret, body)}
			}},
		{"service-hooks", "outbound-call", []byte(`{"agentID":"a-1","targetPhoneNumber":"+14155550100"}`),
			func([]byte) map[string]string { return map[string]string{"x-api-key": shNewKey} }},
		{"cases-by-header", "", []byte(`{"event":"ESCALATE_CASE","caseId":"c-3"}`),
			func([]byte) map[string]string { return map[string]string{"X-Token": hdrKey} }},
	}

	hdr := func(m map[string]string) http.Header {
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		for k, v := range m {
			h.Set(k, v)
		}
		return h
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(`{"event":"ESCALATE_CASE","caseId":"c-gz"}`))
	require.NoError(t, zw.Close())

	deep := []byte(strings.Repeat("[", 10000) + strings.Repeat("]", 10000))
	deepObj := []byte(`{"event":"ESCALATE_CASE","caseId":"c-deep","x":` + strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000) + "}")
	over := []byte(`{"event":"ESCALATE_CASE","caseId":"c-big","pad":"` + strings.Repeat("x", 70<<10) + `"}`)

	secrets := []string{cuSecret, saSecret, shOldKey, shNewKey, hdrKey}
	var cases []ingestCase
	cases = append(cases,
		ingestCase{name: "GET ingest", method: http.MethodGet, path: "/v1/ingest/case-updates", want: 405},
		ingestCase{name: "PUT ingest", method: http.MethodPut, path: "/v1/ingest/service-hooks/outbound-call",
			body: targets[2].body, header: hdr(targets[2].cred(nil)), want: 405},
		ingestCase{name: "DELETE ingest", method: http.MethodDelete, path: "/v1/ingest/service-hooks/outbound-call", want: 405},
		ingestCase{name: "unknown source", path: "/v1/ingest/nobody", body: targets[2].body,
			header: hdr(targets[2].cred(nil)), want: 404, cause: "unknown_source"},
		ingestCase{name: "unknown source, long", path: "/v1/ingest/" + strings.Repeat("n", 5000), body: []byte(`{}`), want: 404, cause: "unknown_source"},
		ingestCase{name: "unknown source %00", path: "/v1/ingest/no%00body", body: []byte(`{}`), want: 404, cause: "unknown_source"},
		// A sender that puts a credential in the URL by mistake.
		ingestCase{name: "secret as source", path: "/v1/ingest/" + cuSecret, body: []byte(`{}`), want: 404, cause: "unknown_source", echoes: true},
		ingestCase{name: "secret as event", path: "/v1/ingest/service-hooks/" + shNewKey, body: targets[2].body,
			header: hdr(targets[2].cred(nil)), want: 404, cause: "unknown_event", kept: true, echoes: true},
		ingestCase{name: "secret in an unknown route", path: "/v1/ingest/service-hooks/x/" + shOldKey + "/" + hdrKey + "/" + saSecret, body: []byte(`{}`), want: 404, cause: "not_found", echoes: true},
		ingestCase{name: "secret, escaped, in an unknown route", path: "/v1/ingest/a/b/" + url.PathEscape(saSecret), body: []byte(`{}`), want: 404, cause: "not_found", echoes: true},
		ingestCase{name: "too deep a path", path: "/v1/ingest/service-hooks/outbound-call/extra", body: targets[2].body,
			header: hdr(targets[2].cred(nil)), want: 404},
	)

	for _, g := range targets {
		signedCase := func(name string, body []byte, want int, cause string, kept bool, extra map[string]string) ingestCase {
			h := hdr(g.cred(body))
			for k, v := range extra {
				h.Set(k, v)
			}
			return ingestCase{name: g.source + " " + name, path: g.path(), body: body, header: h, want: want, cause: cause, kept: kept}
		}
		validWith := func(name string, extra map[string]string) ingestCase {
			body := append(append([]byte{}, g.body[:len(g.body)-1]...), []byte(fmt.Sprintf(`,"case":%q}`, name))...)
			return signedCase(name, body, 0, "", true, extra)
		}
		noCred := hdr(nil)

		atLimit := append(append([]byte{}, g.body[:len(g.body)-1]...), `,"pad":"`...)
		atLimit = append(atLimit, strings.Repeat("p", 64<<10-len(atLimit)-2)...)
		atLimit = append(atLimit, `"}`...)
		overByOne := append(append([]byte{}, atLimit[:len(atLimit)-2]...), `p"}`...)
		cases = append(cases,
			signedCase("exactly max_body_bytes", atLimit, 200, "", true, nil),
			signedCase("max_body_bytes and one", overByOne, 413, "body_too_large", true, nil),
			ingestCase{name: g.source + " trailing slash", path: g.path() + "/", body: g.body, header: hdr(g.cred(g.body)), want: 0, kept: true},
			// No ingest route: the sender is told its URL is wrong.
			ingestCase{name: g.source + " double slash", path: "/" + g.path(), body: g.body, header: hdr(g.cred(g.body)), want: 404, cause: "not_found"},
			ingestCase{name: g.source + " source in capitals", path: strings.ToUpper(g.path()), body: g.body, header: hdr(g.cred(g.body)), want: 404},
			signedCase("empty body", nil, 400, "invalid_json", true, nil),
			signedCase("null", []byte(`null`), 0, "", true, nil),
			signedCase("[]", []byte(`[]`), 0, "", true, nil),
			signedCase(`"x"`, []byte(`"x"`), 0, "", true, nil),
			signedCase("1", []byte(`1`), 0, "", true, nil),
			signedCase("10k nested arrays", deep, 0, "", true, nil),
			signedCase("10k nested objects", deepObj, 0, "", true, nil),
			validWith("huge exponent", nil),
			signedCase("1e999999", []byte(`{"event":"ESCALATE_CASE","caseId":"c-n","n":1e999999,"agentID":"a","targetPhoneNumber":-1e999999}`), 0, "", true, nil),
			signedCase("100k digits", []byte(`{"event":"ESCALATE_CASE","caseId":"c-d","timeInQueue":`+strings.Repeat("9", 60000)+`}`), 0, "", true, nil),
			signedCase("duplicate keys", []byte(`{"event":"ESCALATE_CASE","event":"CREATE_CASE","caseId":"a","caseId":"b","agentID":"x","agentID":"y"}`), 0, "", true, nil),
			signedCase("invalid UTF-8", []byte("{\"event\":\"ESCALATE_CASE\",\"caseId\":\"c-\xff\xfe\",\"agentID\":\"\xc3\"}"), 0, "", true, nil),
			signedCase("NUL escape", []byte(`{"event":"ESCALATE_CASE","caseId":"c-\u0000","agentID":"\u0000","note":"a\u0000b"}`), 0, "", true, nil),
			signedCase("raw NUL byte", []byte("{\"event\":\"ESCALATE_CASE\",\"caseId\":\"c-\x00\"}"), 0, "", true, nil),
			signedCase("lone surrogate", []byte(`{"event":"ESCALATE_CASE","caseId":"\ud800","agentID":"\udfff"}`), 0, "", true, nil),
			signedCase("BOM prefix", append([]byte("\xef\xbb\xbf"), g.body...), 0, "", true, nil),
			signedCase("over max_body_bytes", over, 413, "body_too_large", true, nil),
			// A compressed body is refused by name, not read as bad JSON.
			signedCase("gzip", gz.Bytes(), 415, "unsupported_content_encoding", true, map[string]string{"Content-Encoding": "gzip"}),
			signedCase("gzip claimed, plain body", g.body, 415, "unsupported_content_encoding", true, map[string]string{"Content-Encoding": "identity, GZIP"}),
			signedCase("br", g.body, 415, "unsupported_content_encoding", true, map[string]string{"Content-Encoding": "br"}),
			validWith("Content-Encoding identity", map[string]string{"Content-Encoding": " Identity "}),
			signedCase("Content-Type text/plain", g.body, 0, "", true, map[string]string{"Content-Type": "text/plain; charset=utf-16"}),
			signedCase("Content-Type garbage", g.body, 0, "", true, map[string]string{"Content-Type": ";;;=\"; charset="}),
			ingestCase{name: g.source + " no credentials", path: g.path(), body: g.body, header: noCred, want: 401, cause: "unauthorized"},
			ingestCase{name: g.source + " over limit, no credentials", path: g.path(), body: over, header: noCred, want: 401, cause: "unauthorized"},
			validWith("Idempotency-Key 600 chars", map[string]string{"Idempotency-Key": strings.Repeat("k", 600)}),
			validWith("Idempotency-Key 512 four-byte chars", map[string]string{"Idempotency-Key": strings.Repeat("🔑", 512)}),
			validWith("Idempotency-Key unicode", map[string]string{"Idempotency-Key": "ключ-🔑-" + g.source}),
			validWith("Idempotency-Key latin-1 bytes", map[string]string{"Idempotency-Key": "k\xe9y-" + g.source}),
			validWith("Idempotency-Key spaces", map[string]string{"Idempotency-Key": "   "}),
			validWith("webhook-id long", map[string]string{"webhook-id": strings.Repeat("w", 513)}),
			validWith("webhook-id tab", map[string]string{"webhook-id": "msg\t1" + g.source}),
			validWith("webhook-id bad bytes", map[string]string{"webhook-id": "\xff\xfe"}),
			validWith("webhook-id and Idempotency-Key", map[string]string{"webhook-id": "w-" + g.source, "Idempotency-Key": "i-" + g.source}),
		)
		// Each reuse of one key with another body is refused as a conflict.
		key := map[string]string{"Idempotency-Key": "reused-" + g.source}
		first := validWith("key first use", key)
		first.want = 200
		again := validWith("key first use", key)
		again.name = g.source + " key same body again"
		again.want = 200
		other := validWith("key reused with another body", key)
		other.want, other.cause = 409, "idempotency_conflict"
		cases = append(cases, first, again, other)

		if g.event != "" {
			for _, ev := range []string{"out%00bound-call", "before-%00", strings.Repeat("e", 5000), "%ff%fe", "..%2F..%2Fetc", "%C3%A9v%E2%80%AE"} {
				h := hdr(g.cred(g.body))
				cases = append(cases, ingestCase{name: g.source + " event " + trunc(ev), path: "/v1/ingest/" + g.source + "/" + ev,
					body: g.body, header: h, want: 404, cause: "unknown_event", kept: true})
			}
		} else {
			h := hdr(g.cred(g.body))
			cases = append(cases, ingestCase{name: g.source + " path event %00", path: g.path() + "/ESCALATE%00CASE",
				body: g.body, header: h, want: 0, kept: true})
			// The path names the event only when the body does not.
			noEvent := []byte(`{"caseId":"c-path"}`)
			for _, ev := range []string{"ESCALATE%00CASE", "%ff%fe", strings.Repeat("E", 5000), randomText(3000)} {
				cases = append(cases, ingestCase{name: g.source + " body without event, path event " + trunc(ev), path: g.path() + "/" + ev,
					body: noEvent, header: hdr(g.cred(noEvent)), want: 0, kept: true})
			}
		}
		// Odd event types in the body.
		for _, ev := range []string{`"ESC\xff"`, `"\u0000"`, `"a\u0000b"`, `""`, `" "`, `123`, `null`, `true`, `{}`, `["ESCALATE_CASE"]`, `"\ud800"`, `"` + strings.Repeat("\\", 3000) + `"`} {
			body := []byte(`{"event":` + ev + `,"caseId":"c-ev"}`)
			cases = append(cases, signedCase("body event "+trunc(ev), body, 0, "", true, nil))
		}
		// Values longer than an index entry holds, in every indexed field.
		for _, field := range []string{"event", "caseId", "customerId", "customerRecordId", "conversationId", "agentID", "targetPhoneNumber", "queue", "contactPhoneNumber"} {
			body := []byte(`{"event":"ESCALATE_CASE","caseId":"c-long","` + field + `":"` + randomText(20000) + `"}`)
			cases = append(cases, signedCase("long "+field, body, 0, "", true, nil))
			body = []byte(`{"event":"ESCALATE_CASE","caseId":"c-long","` + field + `":"+` + strings.Repeat("4", 20000) + `"}`)
			cases = append(cases, signedCase("long digits "+field, body, 0, "", true, nil))
		}

		if g.hmacTarget() {
			sigHeader, wrongAlg, malformed, otherBody := "x-cv-signature", "sha1="+hexHMAC(cuSecret, g.body)[:40], "zz-not-hex", hexHMAC(cuSecret, []byte(`{}`))
			if g.source == "service-actions" {
				sigHeader, wrongAlg, malformed, otherBody = "Authorization", "HMAC-SHA1 "+b64HMAC(saSecret, g.body), "HMAC ***", "HMAC "+b64HMAC(saSecret, []byte(`{}`))
			}
			for name, v := range map[string]string{"malformed": malformed, "wrong algorithm": wrongAlg, "over another body": otherBody,
				"empty": " ", "huge": strings.Repeat("a", 8000), "secret itself": "HMAC " + cuSecret + saSecret} {
				h := hdr(nil)
				h.Set(sigHeader, v)
				cases = append(cases, ingestCase{name: g.source + " signature " + name, path: g.path(), body: g.body, header: h, want: 401, cause: "unauthorized"})
			}
			h := hdr(g.cred(g.body))
			h.Add(sigHeader, "garbage")
			cases = append(cases, ingestCase{name: g.source + " two signatures", path: g.path(), body: g.body, header: h, want: 0, kept: true})
			h = hdr(g.cred(g.body))
			h.Set("x-api-key", shNewKey)
			h.Set("X-Token", hdrKey)
			cases = append(cases, ingestCase{name: g.source + " other sources' credentials too", path: g.path(), body: g.body, header: h, want: 0, kept: true})
		} else {
			name := "x-api-key"
			if g.source == "cases-by-header" {
				name = "X-Token"
			}
			h := hdr(nil)
			h.Add(name, "wrong")
			h.Add(name, shNewKey+hdrKey)
			cases = append(cases, ingestCase{name: g.source + " two wrong keys", path: g.path(), body: g.body, header: h, want: 401, cause: "unauthorized"})
			h = hdr(g.cred(nil))
			h.Add(name, "wrong")
			cases = append(cases, ingestCase{name: g.source + " right key then wrong", path: g.path(), body: validWith("rk", nil).body, header: h, want: 0, kept: true})
			h = hdr(nil)
			h.Set(name, "wrong "+hdrKey)
			cases = append(cases, ingestCase{name: g.source + " key with secret inside", path: g.path(), body: g.body, header: h, want: 401, cause: "unauthorized"})
		}

		// Framing: a Content-Length that lies, a chunked body.
		headFor := func(body []byte) string {
			h := "POST " + g.path() + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
			for k, v := range g.cred(body) {
				h += k + ": " + v + "\r\n"
			}
			return h
		}
		head := headFor(g.body)
		cases = append(cases,
			ingestCase{name: g.source + " Content-Length longer than body", want: 400, cause: "unreadable_body", halfClose: true,
				raw: []byte(head + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(g.body)+100) + string(g.body))},
			ingestCase{name: g.source + " Content-Length shorter than body", want: 0, kept: true,
				raw: []byte(head + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(g.body)-5) + string(g.body))},
			ingestCase{name: g.source + " chunked", want: 0, kept: true, body: g.body,
				raw: []byte(head + "Transfer-Encoding: chunked\r\n\r\n" + chunked(g.body))},
			ingestCase{name: g.source + " chunked over the limit", want: 0, kept: true, body: over,
				raw: []byte(head + "Transfer-Encoding: chunked\r\n\r\n" + chunked(over))},
			// A sender that closes its side once the request is sent is
			// still answered, and its delivery stored.
			ingestCase{name: g.source + " half-closed", want: 200, kept: true, body: g.body, halfClose: true,
				raw: []byte(head + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(g.body)) + string(g.body))},
			ingestCase{name: g.source + " half-closed, chunked", want: 200, kept: true, body: g.body, halfClose: true,
				raw: []byte(head + "Transfer-Encoding: chunked\r\n\r\n" + chunked(g.body))},
			ingestCase{name: g.source + " half-closed, not JSON", want: 400, cause: "invalid_json", kept: true, halfClose: true,
				raw: []byte(headFor([]byte("{]")) + "Content-Length: 2\r\n\r\n{]")},
			ingestCase{name: g.source + " chunked, never ended", want: 400, cause: "unreadable_body", halfClose: true,
				raw: []byte(head + "Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n", len(g.body)) + string(g.body))},
		)
	}

	// before-* hooks whose body gives nothing to answer with.
	for _, body := range []string{``, `null`, `[]`, `"x"`, `{"useCustomerContactInfo":{"a":[1e999]}}`, "{\"caseId\":\"\xff\"}", `{"useCustomerContactInfo":"\u0000"}`} {
		for _, ev := range []string{"before-resolve", "before-book-appointment", "before-check-in", "before-queue-up"} {
			raw := []byte(body)
			cases = append(cases, ingestCase{name: ev + " body " + trunc(body), path: "/v1/ingest/service-actions/" + ev, body: raw,
				header: hdr(targets[1].cred(raw)), kept: true})
		}
	}
	// The same, and values no index entry holds, and a key reused with
	// another body, where before-* hooks may be spooled.
	var spooled []ingestCase
	for _, tc := range cases {
		if strings.HasPrefix(tc.name, "before-") {
			tc.name, tc.spool = "spooling "+tc.name, true
			spooled = append(spooled, tc)
		}
	}
	for i, body := range []string{`{"caseId":"` + randomText(20000) + `"}`, `{"conversationId":"` + randomText(20000) + `"}`, `{"customerRecordId":"` + randomText(20000) + `"}`} {
		raw := []byte(body)
		spooled = append(spooled, ingestCase{name: fmt.Sprintf("spooling before-resolve long value %d", i), path: "/v1/ingest/service-actions/before-resolve",
			body: raw, header: hdr(targets[1].cred(raw)), kept: true, spool: true})
	}
	for i, body := range []string{`{"caseId":"k-1"}`, `{"caseId":"k-1"}`, `{"caseId":"k-2"}`} {
		raw := []byte(body)
		h := hdr(targets[1].cred(raw))
		h.Set("Idempotency-Key", "spool-key")
		tc := ingestCase{name: fmt.Sprintf("spooling before-resolve key use %d", i), path: "/v1/ingest/service-actions/before-resolve",
			body: raw, header: h, want: 200, kept: true, spool: true}
		if i == 2 {
			tc.want, tc.cause = 409, "idempotency_conflict"
		}
		spooled = append(spooled, tc)
	}
	cases = append(cases, spooled...)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := b
			if tc.spool {
				b = spooling
			}
			kept := b.count(t, "rejected_requests")
			var res response
			if tc.raw != nil {
				res = b.rawRequest(t, tc.raw, tc.halfClose)
			} else {
				res = b.hostile(t, tc)
			}
			require.Less(t, res.status, 500, "%s", res.body)
			for _, secret := range secrets {
				if !tc.echoes {
					require.NotContains(t, string(res.body), secret)
				}
			}
			require.GreaterOrEqual(t, res.status, 200, "%s", res.body)
			if tc.want != 0 {
				require.Equal(t, tc.want, res.status, "%s", res.body)
			}
			if res.status >= 400 {
				require.Equal(t, "application/problem+json", res.header.Get("Content-Type"), "%s", res.body)
				p := res.json(t)
				require.NotEmpty(t, p["detail"])
				require.EqualValues(t, res.status, p["status"])
				require.True(t, strings.HasPrefix(p["type"].(string), "urn:casetrail:problem:"), p["type"])
				if tc.cause != "" {
					require.Equal(t, "urn:casetrail:problem:"+tc.cause, p["type"], "%s", res.body)
				}
				id, _ := p["rejectedId"].(string)
				if tc.kept && res.status != 401 && res.status != 405 {
					if p["type"] == "urn:casetrail:problem:unreadable_body" {
						require.Equal(t, kept, b.count(t, "rejected_requests"))
						return
					}
					require.NotEmpty(t, id, "a refusal after authentication is kept: %s", res.body)
					require.Equal(t, kept+1, b.count(t, "rejected_requests"), "kept once")
					r := b.sweep(t, auditorKey, "/v1/rejected/"+id, "")
					require.Equal(t, 200, r.status, "%s", r.body)
					var rej struct {
						Cause         string  `json:"cause"`
						Status        int     `json:"status"`
						RawBody       *string `json:"rawBody"`
						BodyTruncated bool    `json:"bodyTruncated"`
						Credential    string  `json:"credential"`
					}
					require.NoError(t, json.Unmarshal(r.body, &rej))
					require.Equal(t, strings.TrimPrefix(p["type"].(string), "urn:casetrail:problem:"), rej.Cause)
					require.Equal(t, res.status, rej.Status)
					if res.status != 413 && tc.body != nil && tc.raw == nil {
						require.NotNil(t, rej.RawBody)
						raw, err := base64.StdEncoding.DecodeString(*rej.RawBody)
						require.NoError(t, err)
						require.Equal(t, tc.body, raw, "the refused body is kept byte for byte")
					}
				} else if !tc.kept {
					require.Empty(t, id)
					require.Equal(t, kept, b.count(t, "rejected_requests"), "unauthenticated requests are not kept")
				}
				return
			}
			require.Equal(t, kept, b.count(t, "rejected_requests"))
			if sp := res.header.Get("X-Casetrail-Event-Id"); sp != "" {
				row := b.row(t, sp)
				if tc.body != nil {
					require.Equal(t, tc.body, row.Body, "the event is stored byte for byte")
				}
				if row.Reply != nil {
					require.JSONEq(t, string(row.Reply), string(res.body))
				}
			} else if !tc.spool || res.header.Get("X-Casetrail-Spooled") != "true" {
				// (A spooled hook, when the database was slow, is stored
				// once the spool drains.)
				t.Fatalf("a 2xx names no stored event: %v %s", res.header, res.body)
			}
		})
	}

	// No credential reaches the log, whatever was sent.
	out := logs.String()
	require.Contains(t, out, "/v1/ingest/", "the server's log was captured")
	for _, secret := range secrets {
		require.NotContains(t, out, secret)
	}
	// An admin sees the refusals, masked and without bodies.
	r := b.sweep(t, adminKey, "/v1/rejected?limit=500", "")
	require.Equal(t, 200, r.status, "%s", r.body)
	require.True(t, json.Valid(r.body))
}

// randomText is n characters that do not compress.
func randomText(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	out := make([]byte, n)
	for i := range out {
		out[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return string(out)
}

func trunc(s string) string {
	if len(s) > 20 {
		return s[:20] + "..."
	}
	return s
}

func chunked(body []byte) string {
	var sb strings.Builder
	for len(body) > 0 {
		n := min(len(body), 7000)
		fmt.Fprintf(&sb, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	sb.WriteString("0\r\n\r\n")
	return sb.String()
}

// hostile sends tc with its path and headers exactly as written.
func (b *testBundle) hostile(t *testing.T, tc ingestCase) response {
	t.Helper()
	method := tc.method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequest(method, b.url+"/", bytes.NewReader(tc.body))
	require.NoError(t, err)
	asWritten(req, tc.path)
	if tc.header != nil {
		req.Header = tc.header.Clone()
	}
	return roundTrip(t, req, false)
}

// rawRequest writes raw on a connection of its own, closes the writing
// side if told to, and reads the first answer.
func (b *testBundle) rawRequest(t *testing.T, raw []byte, halfClose bool) response {
	t.Helper()
	u, err := url.Parse(b.url)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	defer conn.Close()
	// A server that never answers fails this case, not the whole run.
	require.NoError(t, conn.SetDeadline(time.Now().Add(2*time.Minute)))
	_, err = conn.Write(raw)
	require.NoError(t, err)
	if halfClose {
		require.NoError(t, conn.(*net.TCPConn).CloseWrite())
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return response{status: res.StatusCode, header: res.Header, body: body}
}
