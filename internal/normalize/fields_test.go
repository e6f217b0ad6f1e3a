package normalize

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	const uk = "+447700900123"
	tests := []struct {
		raw, cc string
		want    string // "" means not a phone number
	}{
		// One UK mobile number in the ways people and systems write it.
		{"+447700900123", "", uk},
		{"+44 7700 900123", "", uk},
		{"+44 (0)7700 900123", "", uk},
		{"+44-7700-900-123", "", uk},
		{"+44.7700.900.123", "", uk},
		{"(+44) 7700 900123", "", uk},
		{"0044 7700 900123", "", uk},
		{"0044 (0)7700 900123", "", uk},
		{"tel:+44-7700-900123", "", uk},
		{"  +44 7700\u00a0900123 ", "", uk},
		{"447700900123", "", uk},
		{"07700 900123", "44", uk},
		{"07700900123", "44", uk},
		{"(07700) 900-123", "44", uk},
		{"7700 900123", "44", uk},
		{"447700900123", "44", uk},
		{"+44 7700 900123", "1", uk},
		{"07700 900123", "+44", uk},

		// One US number.
		{"+1 (555) 010-0142", "", "+15550100142"},
		{"1-555-010-0142", "", "+15550100142"},
		{"(555) 010-0142", "1", "+15550100142"},
		{"555.010.0142", "1", "+15550100142"},
		{"15550100142", "1", "+15550100142"},
		// Russia and Kazakhstan dial a national number after a trunk 8,
		// and abroad after 810.
		{"8 (912) 345-67-89", "7", "+79123456789"},
		{"+7 912 345-67-89", "7", "+79123456789"},
		{"79123456789", "7", "+79123456789"},
		{"912 345 67 89", "7", "+79123456789"},
		{"810 44 7700 900123", "7", uk},
		{"345-67-89", "7", ""},
		// Belarus dials a national number after the trunk "8 0" (or, in
		// the newer plan, "0"), and abroad after 810.
		{"8 029 123 45 67", "375", "+375291234567"},
		{"8 (029) 123-45-67", "375", "+375291234567"},
		{"8 017 222 33 44", "375", "+375172223344"},
		{"80291234567", "375", "+375291234567"},
		{"029 123 45 67", "375", "+375291234567"},
		{"29 123 45 67", "375", "+375291234567"},
		{"+375 29 123 45 67", "375", "+375291234567"},
		{"375291234567", "375", "+375291234567"},
		{"810 44 7700 900123", "375", uk},
		{"800 1234 5678", "375", "+80012345678"}, // no area code starts with 0

		// A default code does not turn numbers written internationally
		// without their "+", or dialled abroad, into wrong ones.
		{"447700900123", "1", uk},
		{"011 44 7700 900123", "1", uk},
		{"15550100142", "44", "+15550100142"},
		// Fewer than 11 digits are national, even when they start with the
		// code: Danish numbers have 8 digits, some of them starting with 45.
		{"45123456", "45", "+4545123456"},
		{"4512345678", "45", "+454512345678"},
		{"555-0142", "1", ""}, // no area code
		{"010-0142", "1", ""},

		// Where the leading 0 is part of the number (Italy, San Marino, the
		// Vatican), a default code keeps it; elsewhere it is a trunk prefix.
		{"06 1234 5678", "39", "+390612345678"},
		{"06-1234-5678", "+39", "+390612345678"},
		{"+39 06 1234 5678", "", "+390612345678"},
		{"0039 06 1234 5678", "39", "+390612345678"},
		{"390612345678", "39", "+390612345678"},
		{"347 123 4567", "39", "+393471234567"}, // a mobile has no 0 to keep
		{"0549 123456", "378", "+3780549123456"},
		{"06 698 12345", "379", "+3790669812345"},
		{"06 12 34 56 78", "33", "+33612345678"}, // France: a trunk 0
		{"0123", "378", ""},                      // too short even with its 0
		// There a "(0)" after the country code is that 0, not a trunk.
		{"+39 (0)6 1234 5678", "", "+390612345678"},
		{"+39(0)612345678", "44", "+390612345678"},
		{"0039 (0)6 1234 5678", "", "+390612345678"},
		{"+378 (0)549 123456", "", "+3780549123456"},
		{"00379 (0)6 698 12345", "", "+3790669812345"},
		{"+33 (0)6 12 34 56 78", "", "+33612345678"},
		{"0033 (0)6 12 34 56 78", "39", "+33612345678"},

		// The seed's short example is still E.164-sized.
		{"+123456789", "", "+123456789"},

		// Not phone numbers, or not confidently.
		{"07700 900123", "", ""},      // national without a default code
		{"5550100142", "", ""},        // 10 digits, no code
		{"+44 7700", "", ""},          // too short
		{"+1234567890123456", "", ""}, // 16 digits
		{"+0447700900123", "", ""},    // country codes do not start with 0
		{"+44+7700900123", "", ""},
		{"7700+900123", "", ""},
		{"jordan.patient@example.org", "44", ""},
		{"6d820576a3864160a715312b4e9ac376", "44", ""},
		{"48fad19d-1510-4c8f-bd73-44853f35019e", "44", ""},
		{"+44 7700 900123 ext 4", "", ""},
		{"anonymous", "44", ""},
		{"", "44", ""},
		{"+", "", ""},
		{"00", "44", ""},
		{"0", "44", ""},
		{"07700 900123", "0044", ""}, // invalid default code is ignored
		{"07700 900123", "abc", ""},
		{strings.Repeat("1", 100), "", ""},
	}
	for _, tt := range tests {
		got, ok := NormalizePhone(tt.raw, tt.cc)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("NormalizePhone(%q, %q) = %q, %v; want %q", tt.raw, tt.cc, got, ok, tt.want)
		}
	}
}

func TestParseQueueTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw  string
		bare time.Duration
		want time.Duration // -1: rejected
	}{
		{"42", 0, 42 * time.Second},
		{"42", time.Second, 42 * time.Second},
		{"42.5", time.Second, 42500 * time.Millisecond},
		{"1500", time.Millisecond, 1500 * time.Millisecond},
		{" 0 ", 0, 0},
		{"1500ms", 0, 1500 * time.Millisecond},
		{"1500 ms", time.Minute, 1500 * time.Millisecond},
		{"42s", 0, 42 * time.Second},
		{"42 sec", 0, 42 * time.Second},
		{"42 Seconds", 0, 42 * time.Second},
		{"1.5s", 0, 1500 * time.Millisecond},
		{"1,5s", 0, 1500 * time.Millisecond},
		{"1m30s", 0, 90 * time.Second},
		{"1m 30s", 0, 90 * time.Second},
		{"2 minutes 5 seconds", 0, 125 * time.Second},
		{"1h2m3s", 0, time.Hour + 2*time.Minute + 3*time.Second},
		{"2 mins", 0, 2 * time.Minute},
		{"01:30", 0, 90 * time.Second},
		{"90:00", 0, 90 * time.Minute},
		{"00:01:30", 0, 90 * time.Second},
		{"1:02:03", 0, time.Hour + 2*time.Minute + 3*time.Second},
		{"00:00:42.250", 0, 42250 * time.Millisecond},
		{"00:01:30.1234567", 0, 90*time.Second + 123456700*time.Nanosecond},
		{"1.02:03:04", 0, 26*time.Hour + 3*time.Minute + 4*time.Second},
		{"PT1M30S", 0, 90 * time.Second},
		{"pt42.5s", 0, 42500 * time.Millisecond},
		{"PT0.25S", 0, 250 * time.Millisecond},
		{"PT1H", 0, time.Hour},
		{"P0DT0H1M30S", 0, 90 * time.Second},
		{"P1DT1S", 0, 24*time.Hour + time.Second},

		{"", 0, -1},
		{"-5", 0, -1},
		{"-00:00:05", 0, -1},
		{"PT-5S", 0, -1},
		{"abc", 0, -1},
		{"42x", 0, -1},
		{"42 parsecs", 0, -1},
		{"1e3", 0, -1},
		{"NaN", 0, -1},
		{"Inf", 0, -1},
		{"0x10", 0, -1},
		{"1.", 0, -1},
		{"00:60", 0, -1},
		{"00:61:00", 0, -1},
		{"1:2:3:4", 0, -1},
		{"P", 0, -1},
		{"PT", 0, -1},
		{"P1M", 0, -1}, // months are ambiguous
		{"P1Y", 0, -1},
		{"PT1M30", 0, -1},
		{"99999999999999999999", 0, -1},
		{"999999999999h", 0, -1},
		{strings.Repeat("9", 100), 0, -1},
	}
	for _, tt := range tests {
		got, ok := ParseQueueTime(tt.raw, tt.bare)
		if tt.want < 0 {
			if ok {
				t.Errorf("ParseQueueTime(%q) = %v, want rejected", tt.raw, got)
			}
			continue
		}
		if !ok || got != tt.want {
			t.Errorf("ParseQueueTime(%q, %v) = %v, %v; want %v", tt.raw, tt.bare, got, ok, tt.want)
		}
	}
}

func TestQueueTimeFieldNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		field string // a JSON member, as written in the body
		want  int64  // -1: none
	}{
		{`"timeInQueue": 42`, 42000},
		{`"TimeInQueue": 42.5`, 42500},
		{`"time_in_queue": "42"`, 42000},
		{`"Time in queue": "00:00:42"`, 42000},
		{`"timeInQueueSeconds": 42`, 42000},
		{`"time_in_queue_secs": 42`, 42000},
		{`"timeInQueueMs": 42000`, 42000},
		{`"time-in-queue-millis": 1500`, 1500},
		{`"timeInQueueMilliseconds": "1500"`, 1500},
		{`"Time in queue (ms)": 1500`, 1500},
		{`"queueTime": "PT42S"`, 42000},
		{`"queue_time_ms": 250`, 250},
		{`"waitTime": 7`, 7000},
		{`"waitTimeInSeconds": 7`, 7000},
		{`"waitDuration": "1m"`, 60000},
		{`"waitingTime": "00:10"`, 10000},
		{`"queueDurationMinutes": 2`, 120000},
		{`"timeInQueue": "1500ms"`, 1500},
		{`"timeInQueueMs": "2s"`, 2000}, // a unit in the value wins over the name
		{`"timeInQueue": -3`, -1},
		{`"timeInQueue": "soon"`, -1},
		{`"timeInQueue": null`, -1},
		{`"timeInQueue": true`, -1},
		{`"timeInQueue": 1e300`, -1},
		{`"duration": 42`, -1}, // too vague to be the time in queue
		{`"data": {"waitTimeMs": 900}`, 900},
		{`"agent": {"timeInQueue": 5}`, -1}, // not the caller's
	}
	for _, tt := range tests {
		ev, err := Decode(ServiceHooks, "abandoned-conversation", []byte("{"+tt.field+"}"), Options{})
		if err != nil {
			t.Fatalf("%s: %v", tt.field, err)
		}
		switch {
		case tt.want < 0 && ev.TimeInQueueMs != nil:
			t.Errorf("%s: got %d ms, want none", tt.field, *ev.TimeInQueueMs)
		case tt.want >= 0 && (ev.TimeInQueueMs == nil || *ev.TimeInQueueMs != tt.want):
			t.Errorf("%s: got %v, want %d ms", tt.field, ev.TimeInQueueMs, tt.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		json string // a JSON value
		want string // RFC 3339 in UTC, "" for nil
	}{
		{`"2024-05-14T09:41:07Z"`, "2024-05-14T09:41:07Z"},
		{`"2024-05-14T09:41:07z"`, "2024-05-14T09:41:07Z"},
		{`"2024-05-14t09:41:07Z"`, "2024-05-14T09:41:07Z"},
		{`"2022-03-08T07:39:47.6052457Z"`, "2022-03-08T07:39:47.6052457Z"},
		{`"2024-05-14T09:41:07.123456789012Z"`, "2024-05-14T09:41:07.123456789Z"},
		{`"2024-05-14T11:41:07+02:00"`, "2024-05-14T09:41:07Z"},
		{`"2024-05-14T04:41:07.5-05:00"`, "2024-05-14T09:41:07.5Z"},
		{`"2024-05-14T11:41:07+0200"`, "2024-05-14T09:41:07Z"},
		{`"2024-05-14T11:41:07+02"`, "2024-05-14T09:41:07Z"},
		{`"2024-05-14T09:41:07"`, "2024-05-14T09:41:07Z"},
		{`"2024-05-14T09:41:07.25"`, "2024-05-14T09:41:07.25Z"},
		{`"2024-05-14 09:41:07"`, "2024-05-14T09:41:07Z"},
		{`"2024-05-14 09:41:07,5+01:00"`, "2024-05-14T08:41:07.5Z"},
		{`"2024-05-14T09:41"`, "2024-05-14T09:41:00Z"},

		// A zone written after a space, as loggers, databases, Ruby and
		// Go's time.String print it, or a zone name that is UTC.
		{`"2024-05-14 09:41:07 UTC"`, "2024-05-14T09:41:07Z"},
		{`"2024-05-14 09:41:07 utc"`, "2024-05-14T09:41:07Z"},
		{`"2024-05-14T09:41:07 GMT"`, "2024-05-14T09:41:07Z"},
		{`"2024-05-14T09:41:07UTC"`, "2024-05-14T09:41:07Z"},
		{`"2024-05-14 09:41:07.123 UTC"`, "2024-05-14T09:41:07.123Z"},
		{`"2024-05-14 09:41 UTC"`, "2024-05-14T09:41:00Z"},
		{`"2024-05-14T09:41Z"`, "2024-05-14T09:41:00Z"},
		{`"2024-05-14T11:41+02:00"`, "2024-05-14T09:41:00Z"},
		{`"2024-05-14 09:41:07 Z"`, "2024-05-14T09:41:07Z"},
		{`"2024-05-14 11:41:07 +02:00"`, "2024-05-14T09:41:07Z"},
		{`"2024-05-14 11:41:07 +0200"`, "2024-05-14T09:41:07Z"},
		{`"2024-05-14 04:41:07 -05"`, "2024-05-14T09:41:07Z"},
		{`"2024-05-14 09:41:07 +0000 UTC"`, "2024-05-14T09:41:07Z"},
		{`"2024-05-14 09:41:07.6052457 +0000 UTC"`, "2024-05-14T09:41:07.6052457Z"},
		{`"2024-05-14 11:41:07 +0200 CEST"`, "2024-05-14T09:41:07Z"},
		{`"2024-05-14 11:41:07 +0200 +0200"`, "2024-05-14T09:41:07Z"},
		{`"2024-05-14 09:41:07 -0000 GMT"`, "2024-05-14T09:41:07Z"},
		{`"/Date(1715679667000)/"`, "2024-05-14T09:41:07Z"},
		{`"/Date(1715679667123+0200)/"`, "2024-05-14T09:41:07.123Z"},
		// A zone name alone is no offset: EST, IST or CST name several.
		{`"2024-05-14 09:41:07 EST"`, ""},
		{`"2024-05-14 09:41:07 CEST"`, ""},
		{`"2024-05-14 09:41:07 +0200 UTC"`, ""},
		{`"2024-05-14 09:41:07 +0200 C3ST"`, ""},
		{`"2024-05-14 09:41:07 UTC extra"`, ""},
		{`"2024-05-14 09:41:07 U"`, ""},
		{`"/Date(-62135596800000)/"`, ""},
		{`"/Date(0)/"`, ""},
		{`"/Date(1715679667000+02)/"`, ""},
		{`"/Date(abc)/"`, ""},
		{`"2024-05-14"`, "2024-05-14T00:00:00Z"},
		{`"Tue, 14 May 2024 09:41:07 GMT"`, "2024-05-14T09:41:07Z"},
		{`"Tue, 14 May 2024 11:41:07 +0200"`, "2024-05-14T09:41:07Z"},
		{`1715679667`, "2024-05-14T09:41:07Z"},
		{`1715679667.5`, "2024-05-14T09:41:07.5Z"},
		{`1646725187.605`, "2022-03-08T07:39:47.605Z"},
		{`1715679667123`, "2024-05-14T09:41:07.123Z"},
		{`1715679667123.5`, "2024-05-14T09:41:07.1235Z"},
		{`1715679667123456`, "2024-05-14T09:41:07.123456Z"},
		{`1715679667123456789`, "2024-05-14T09:41:07.123456789Z"},
		{`"1715679667"`, "2024-05-14T09:41:07Z"},
		{`"1715679667123"`, "2024-05-14T09:41:07.123Z"},
		{`"1715679667123456"`, "2024-05-14T09:41:07.123456Z"},
		{`"1715679667123456789"`, "2024-05-14T09:41:07.123456789Z"},
		{`1.715679667e9`, "2024-05-14T09:41:07Z"},
		{`1.715679667123e12`, "2024-05-14T09:41:07.123Z"},
		{`1.715679667123456e15`, "2024-05-14T09:41:07.123456Z"},

		// Epoch numbers are read by their size: 10 digits are seconds, 13
		// milliseconds, 16 microseconds, 19 nanoseconds, each from
		// 2001-09-09T01:46:40Z until 2286-11-20T17:46:40Z. Other sizes are
		// counts, ids or garbage rather than times.
		{`999999999`, ""},
		{`1000000000`, "2001-09-09T01:46:40Z"},
		{`9999999999`, "2286-11-20T17:46:39Z"},
		{`9999999999.999`, "2286-11-20T17:46:39.999Z"},
		{`10000000000`, ""},
		{`999999999999`, ""},
		{`1000000000000`, "2001-09-09T01:46:40Z"},
		{`9999999999999`, "2286-11-20T17:46:39.999Z"},
		{`10000000000000`, ""},
		{`999999999999999`, ""},
		{`1000000000000000`, "2001-09-09T01:46:40Z"},
		{`9999999999999999`, "2286-11-20T17:46:39.999999Z"},
		{`10000000000000000`, ""},
		{`999999999999999999`, ""},
		{`1000000000000000000`, "2001-09-09T01:46:40Z"},
		{`"9999999999999999999"`, "2286-11-20T17:46:39.999999999Z"},
		{`10000000000000000000`, ""},
		{`31536000`, ""},  // 1971 in seconds, or a number of the same size
		{`123456789`, ""}, // an id
		{`"0042"`, ""},
		{`0.5`, ""},
		{`1e9`, "2001-09-09T01:46:40Z"},
		{`1e21`, ""},

		{`"0001-01-01T00:00:00"`, ""}, // .NET's unset DateTime
		// .NET's largest DateTime, written with a local offset: past 9999
		// in UTC, which neither JSON nor RFC 3339 can write.
		{`"9999-12-31T23:59:59.9999999-05:00"`, ""},
		{`"Fri, 31 Dec 9999 23:00:00 -0500"`, ""},
		{`"9999-12-31T23:59:59.9999999+05:00"`, "9999-12-31T18:59:59.9999999Z"},
		{`"1970-01-01T00:00:00Z"`, ""},
		{`0`, ""},
		{`42`, ""},
		{`-1715679667`, ""},
		{`1e20`, ""},
		{`"Tue, 14 May 2024 09:41:07 EST"`, ""},
		{`"2024-13-01T00:00:00Z"`, ""},
		{`"2024-05-14T25:00:00Z"`, ""},
		{`"2024-05-14T09:41:07+25:00"`, ""},
		{`"2024-05-14T09:41:07 PM"`, ""},
		{`"14/05/2024 09:41"`, ""},
		{`"yesterday"`, ""},
		{`""`, ""},
		{`true`, ""},
		{`null`, ""},
		{`{}`, ""},
	}
	for _, tt := range tests {
		v, _, err := parseJSON([]byte(tt.json))
		if err != nil {
			t.Fatalf("%s: %v", tt.json, err)
		}
		got := ""
		if ts := parseTime(&v); ts != nil {
			got = ts.Format(time.RFC3339Nano)
		}
		if got != tt.want {
			t.Errorf("parseTime(%s) = %q, want %q", tt.json, got, tt.want)
		}
	}
}

func TestBlobs(t *testing.T) {
	t.Parallel()
	const (
		hello       = "aGVsbG8=" // "hello"
		helloSHA    = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
		helloRef    = `{"sha256":"` + helloSHA + `","size":5}`
		binarySHA   = "dbdf9975425299709a9451b04a26c82d41d0b686d3cd90b75328acf8cd00435d" // fb ff fe
		binaryRef   = `{"sha256":"` + binarySHA + `","size":3}`
		notesSHA    = "6fc1d47b2ea215b1e82f56bdace8b51e5ff8873949a8ed3550cdb2bba3a51f21"
		pngSHA      = "497790947d4666760ce38f3c00e852c71fdb66cae849bae8e9ede352719e1581"
		referralSHA = "31b5d347d6d5d5dd4d518a2066515b5c87cb77f2f24996ba7efe4e82b60f103d"
	)
	tests := []struct {
		name  string
		body  string
		doc   string
		blobs []string // hex SHA-256 in order of first appearance
	}{
		{
			name:  "comment attachments deduplicated",
			body:  `{"event":"ADD_CASE_COMMENT","payload":{"comment":{"attachments":[{"fileName":"a.txt","content":"` + hello + `"},{"fileName":"b.txt","content":"` + hello + `"}]},"attachment":{"content":"` + hello + `"}}}`,
			doc:   `{"event":"ADD_CASE_COMMENT","payload":{"comment":{"attachments":[{"fileName":"a.txt","content":` + helloRef + `},{"fileName":"b.txt","content":` + helloRef + `}]},"attachment":{"content":` + helloRef + `}}}`,
			blobs: []string{helloSHA},
		},
		{
			name:  "URL-safe and unpadded",
			body:  `{"attachments":[{"content":"-__-"},{"content":"aGVsbG8"}]}`,
			doc:   `{"attachments":[{"content":` + binaryRef + `},{"content":` + helloRef + `}]}`,
			blobs: []string{binarySHA, helloSHA},
		},
		{
			name:  "standard alphabet with line breaks",
			body:  `{"attachment":{"content":"aGVs\r\nbG8="}}`,
			doc:   `{"attachment":{"content":` + helloRef + `}}`,
			blobs: []string{helloSHA},
		},
		{
			name:  "any object with a fileName",
			body:  `{"data":{"files":[{"FileName":"x","content":"` + hello + `"}]}}`,
			doc:   `{"data":{"files":[{"FileName":"x","content":` + helloRef + `}]}}`,
			blobs: []string{helloSHA},
		},
		{
			name:  "data URIs",
			body:  `{"attachments":[{"content":"data:text/plain;base64,` + hello + `"},{"content":"DATA:;BASE64,-__-"}]}`,
			doc:   `{"attachments":[{"content":` + helloRef + `},{"content":` + binaryRef + `}]}`,
			blobs: []string{helloSHA, binarySHA},
		},
		{
			name: "data URIs not in base64 stay",
			body: `{"attachments":[{"content":"data:text/plain,aGVsbG8="},{"content":"data:text/plain;base64"}]}`,
			doc:  `{"attachments":[{"content":"data:text/plain,aGVsbG8="},{"content":"data:text/plain;base64"}]}`,
		},
		{
			name: "links and text stay",
			body: `{"attachments":[{"content":"https://files.example.com/a/123"},{"content":"see the scan"},{"content":""},{"content":42}]}`,
			doc:  `{"attachments":[{"content":"https://files.example.com/a/123"},{"content":"see the scan"},{"content":""},{"content":42}]}`,
		},
		{
			name: "content outside an attachment stays",
			body: `{"message":{"content":"` + hello + `"},"attachment":{"meta":{"content":"` + hello + `"}}}`,
			doc:  `{"message":{"content":"` + hello + `"},"attachment":{"meta":{"content":"` + hello + `"}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := Decode(CaseUpdates, "X", []byte(tt.body), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if string(ev.Doc) != tt.doc {
				t.Errorf("doc\n got %s\nwant %s", ev.Doc, tt.doc)
			}
			if ev.Lossy {
				t.Error("blob replacement alone must not be lossy")
			}
			var sums []string
			for _, b := range ev.Blobs {
				sums = append(sums, hex.EncodeToString(b.SHA256[:]))
			}
			if strings.Join(sums, ",") != strings.Join(tt.blobs, ",") {
				t.Errorf("blobs %v, want %v", sums, tt.blobs)
			}
		})
	}

	// The example comment's attachments, hashed with sha256sum.
	ev, err := Decode(CaseUpdates, "", readFile(t, eventsDir+"/case-updates/ADD_CASE_COMMENT.json"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Blobs) != 2 || hex.EncodeToString(ev.Blobs[0].SHA256[:]) != notesSHA ||
		hex.EncodeToString(ev.Blobs[1].SHA256[:]) != pngSHA {
		t.Fatalf("unexpected blobs %d", len(ev.Blobs))
	}
	if string(ev.Blobs[0].Content) != "Visit notes: follow-up booked.\n" || len(ev.Blobs[1].Content) != 70 {
		t.Errorf("blob contents not decoded")
	}
	if strings.Contains(string(ev.Doc), "VmlzaXQ") || !strings.Contains(string(ev.Doc), `{"sha256":"`+pngSHA+`","size":70}`) {
		t.Errorf("doc keeps content or lacks reference: %s", ev.Doc)
	}
	ev, err = Decode(CaseUpdates, "", readFile(t, eventsDir+"/case-updates/ADD_CASE_ATTACHMENT.json"), Options{})
	if err != nil || len(ev.Blobs) != 1 || hex.EncodeToString(ev.Blobs[0].SHA256[:]) != referralSHA {
		t.Errorf("attachment blob: %v %d", err, len(ev.Blobs))
	}
}

// Many attachments go through the map path of the deduplication.
func TestManyBlobs(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`{"attachments":[`)
	for i := range 40 {
		if i > 0 {
			b.WriteByte(',')
		}
		// 20 distinct contents, each twice.
		b.WriteString(`{"content":"` + strings.Repeat("QUFB", i%20+1) + `"}`)
	}
	b.WriteString(`]}`)
	ev, err := Decode(ServiceHooks, "workitem-closed", []byte(b.String()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Blobs) != 20 {
		t.Errorf("%d blobs, want 20", len(ev.Blobs))
	}
}

func TestBeforeHookReply(t *testing.T) {
	t.Parallel()
	const (
		head = `{"fields":null,"tagIds":null,"removeCustomer":false,"customerRecordId":null,"useCustomerContactInfo":`
		tail = `,"contactPhoneNumber":null,"contactEmail":null,"serviceTypeId":null,"channel":null,"preventSelfCheckIn":null,"cancelled":false}`
	)
	tests := []struct {
		name, body, echo string
	}{
		{"true", `{"caseId":"c","useCustomerContactInfo":true}`, "true"},
		{"false", `{"caseId":"c","useCustomerContactInfo":false}`, "false"},
		{"absent", `{"caseId":"c"}`, "null"},
		{"null", `{"useCustomerContactInfo":null}`, "null"},
		{"string true", `{"useCustomerContactInfo":"true"}`, "true"},
		{"not a boolean", `{"useCustomerContactInfo":1}`, "null"},
		{"duplicate key, last wins", `{"useCustomerContactInfo":true,"useCustomerContactInfo":false}`, "false"},
		{"array body", `[{"useCustomerContactInfo":true}]`, "null"},
		{"null body", `null`, "null"},
		{"empty object", `{}`, "null"},
	}
	for _, hook := range KnownEvents(ServiceActions) {
		for _, tt := range tests {
			ev, err := Decode(ServiceActions, hook, []byte(tt.body), Options{})
			if err != nil {
				t.Fatalf("%s %s: %v", hook, tt.name, err)
			}
			if !IsBeforeHook(ServiceActions, hook) {
				if ev.Reply != nil {
					t.Errorf("%s: reply %s for an after hook", hook, ev.Reply)
				}
				continue
			}
			want := head + tt.echo + tail
			if string(ev.Reply) != want {
				t.Errorf("%s %s: reply\n got %s\nwant %s", hook, tt.name, ev.Reply, want)
			}
			if same, err := sameJSON(ev.Reply, []byte(want)); err != nil || !same {
				t.Errorf("%s %s: reply is not the expected JSON (%v)", hook, tt.name, err)
			}
		}
	}
	if _, err := Decode(ServiceActions, "before-resolve", []byte(`not json`), Options{}); err == nil {
		t.Error("a body that is not JSON must be refused even for a before hook")
	}
}

func TestEventNames(t *testing.T) {
	t.Parallel()
	if KnownEvents(CaseUpdates) != nil {
		t.Error("case updates accept any event")
	}
	if got := len(KnownEvents(ServiceActions)); got != 10 {
		t.Errorf("%d service actions", got)
	}
	ks := KnownEvents(ServiceHooks)
	ks[0] = "mutated"
	if KnownEvents(ServiceHooks)[0] != "abandoned-conversation" {
		t.Error("KnownEvents exposes its table")
	}
	for _, tt := range []struct {
		kind Kind
		in   string
		want string // "" for unknown
	}{
		{ServiceHooks, "WorkItemClosed", "workitem-closed"},
		{ServiceHooks, "workitem_closed", "workitem-closed"},
		{ServiceHooks, "Abandoned-Conversation", "abandoned-conversation"},
		{ServiceHooks, "OutboundCall", "outbound-call"},
		{ServiceActions, "BeforeResolve", "before-resolve"},
		{ServiceActions, "before_book_appointment", "before-book-appointment"},
		{ServiceActions, "before", ""},
		{ServiceHooks, "before-resolve", ""},
		{CaseUpdates, "CREATE_CASE", ""},
	} {
		got, _ := canonicalEvent(tt.kind, tt.in)
		if got != tt.want {
			t.Errorf("canonicalEvent(%s, %q) = %q, want %q", tt.kind, tt.in, got, tt.want)
		}
		if tt.want != "" {
			ev, err := Decode(tt.kind, tt.in, []byte(`{}`), Options{})
			if err != nil || ev.Type != tt.want {
				t.Errorf("Decode(%s, %q): type %q, %v", tt.kind, tt.in, ev.Type, err)
			}
		}
	}
	for _, tt := range []struct {
		kind  Kind
		event string
		want  bool
	}{
		{ServiceActions, "before-resolve", true},
		{ServiceActions, "before-book-appointment", true},
		{ServiceActions, "before-check-in", true},
		{ServiceActions, "before-queue-up", true},
		{ServiceActions, "BeforeResolve", true},
		{ServiceActions, "after-resolve", false},
		{ServiceActions, "before-nothing", false},
		{ServiceHooks, "before-resolve", false},
		{CaseUpdates, "before-resolve", false},
	} {
		if got := IsBeforeHook(tt.kind, tt.event); got != tt.want {
			t.Errorf("IsBeforeHook(%s, %q) = %v", tt.kind, tt.event, got)
		}
	}
}

// The abandoned-conversation fields are documented only in prose; each row
// is one plausible spelling.
func TestAbandonedConversationAliases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body string
		want want
	}{
		{`{"phoneNumber":"+447700900123","queueName":"Sales","eventTime":"2024-05-14T09:41:07Z"}`,
			want{Phone: "+447700900123", Queue: "Sales", OccurredAt: "2024-05-14T09:41:07Z"}},
		{`{"phone":"07700 900123","queue_id":"q-1","date":"2024-05-14"}`,
			want{Phone: "+447700900123", Queue: "q-1", OccurredAt: "2024-05-14T00:00:00Z"}},
		{`{"callerNumber":"+447700900123","Queue":{"id":"q-2"},"createdAt":1715679667}`,
			want{Phone: "+447700900123", Queue: "q-2", OccurredAt: "2024-05-14T09:41:07Z"}},
		{`{"ANI":"+447700900123","time":"2024-05-14T09:41:07Z"}`,
			want{Phone: "+447700900123", OccurredAt: "2024-05-14T09:41:07Z"}},
		{`{"from":"+447700900123","abandonedAt":"2024-05-14T09:41:07Z"}`,
			want{Phone: "+447700900123", OccurredAt: "2024-05-14T09:41:07Z"}},
		{`{"customerIdentifier":"+447700900123","conversation id":"cv-1","customer_id":"cu-1"}`,
			want{Phone: "+447700900123", ConversationID: "cv-1", CustomerID: "cu-1"}},
		{`{"customer":{"phoneNumber":"+447700900123"},"agent":{"phone":"+15550100142","id":"a-1"}}`,
			want{Phone: "+447700900123", AgentID: "a-1", Actor: &Actor{ID: "a-1"}}},
		{`{"agent":{"phone":"+15550100142"}}`, want{}},
		{`{"from":"web-visitor-77","callerId":"+447700900123"}`, want{Phone: "+447700900123"}},
		{`{"customerPhone":"withheld"}`, want{}},
		{`{"conversation":"cv-9","customerPhoneNumber":4477009001234}`,
			want{ConversationID: "cv-9", Phone: "+4477009001234"}},
	}
	for _, tt := range tests {
		ev, err := Decode(ServiceHooks, "abandoned-conversation", []byte(tt.body), Options{DefaultCountryCode: "44"})
		if err != nil {
			t.Fatalf("%s: %v", tt.body, err)
		}
		g := got(ev)
		g.Type, g.Summary = "", ""
		if !equalWant(g, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.body, g, tt.want)
		}
	}
}

func TestOutboundCallAndWorkItemAliases(t *testing.T) {
	t.Parallel()
	ev, err := Decode(ServiceHooks, "outbound-call", []byte(`{"data":{"agent":{"id":"a-1","name":"Ann Lee"},"dialedNumber":"07700 900123","initiatedAt":"2024-05-14T09:41:07Z","conversationId":"cv-2"}}`), Options{DefaultCountryCode: "44"})
	if err != nil {
		t.Fatal(err)
	}
	if ev.AgentID != "a-1" || ev.Phone != "+447700900123" || ev.ConversationID != "cv-2" ||
		ev.OccurredAt == nil || ev.Summary != "Outbound call started by Ann Lee" {
		t.Errorf("outbound call: %+v", ev)
	}

	ev, err = Decode(ServiceHooks, "workitem-closed", []byte(`{"workItem":{"id":"w-1","direction":"Inbound","createdAt":"2024-05-14T09:00:00Z","customerIdentifier":"visitor@example.org","conversationId":"cv-3"},"agentId":"a-2"}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ev.WorkItemID != "w-1" || ev.IsOutbound == nil || *ev.IsOutbound || ev.Phone != "" ||
		ev.ConversationID != "cv-3" || ev.AgentID != "a-2" || ev.OccurredAt == nil ||
		ev.Summary != "Work item closed by agent a-2 (inbound)" {
		t.Errorf("work item: %+v", ev)
	}
}

// The agent is taken from the first alias that names one: an agent id
// written as null or "" beside the agent object does not hide it.
func TestHookAgentSkipsEmptyAliases(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"id":"w-1","agentId":null,"agent":{"id":"638858857ff57ad8637a7528","name":"Agent John"}}`,
		`{"id":"w-1","agentId":"","agentUserId":null,"agent":{"id":"638858857ff57ad8637a7528","name":"Agent John"}}`,
	} {
		ev, err := Decode(ServiceHooks, "workitem-closed", []byte(body), Options{})
		require.NoError(t, err)
		require.Equal(t, "638858857ff57ad8637a7528", ev.AgentID, body)
		require.Equal(t, &Actor{ID: "638858857ff57ad8637a7528", Name: "Agent John"}, ev.Actor, body)
		require.Equal(t, "Work item closed by Agent John", ev.Summary, body)
	}
}

// Senders write every field of their schema, unset ones as null: an alias
// that names no one must not hide the next one, as TestHookAgentSkipsEmptyAliases
// pins for the contact center.
func TestCaseActorSkipsEmptyAliases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		agent      string
		actor      *Actor
		summary    string
	}{
		{"null caller beside the author",
			`{"event":"ADD_CASE_COMMENT","payload":{"comment":{"id":"cm-1","caller":null,"author":{"id":"u-1","firstName":"Ann","lastName":"Lee"}}}}`,
			"u-1", &Actor{ID: "u-1", Name: "Ann Lee"}, "Comment added by Ann Lee"},
		{"empty caller and null author beside the uploader",
			`{"event":"ADD_CASE_ATTACHMENT","payload":{"attachment":{"id":"at-1","caller":{},"author":null,"uploadedBy":{"id":"u-3","firstName":"Cara","lastName":"Diaz"}}}}`,
			"u-3", &Actor{ID: "u-3", Name: "Cara Diaz"}, "Attachment added by Cara Diaz"},
		{"null caller in the event object, caller beside it",
			`{"event":"CHANGE_CASE_STATUS","payload":{"caller":{"id":"u-2","firstName":"Bob","lastName":"Ray"},"changeStatus":{"newStatus":"Closed","caller":null}}}`,
			"u-2", &Actor{ID: "u-2", Name: "Bob Ray"}, "Status changed to Closed by Bob Ray"},
		{"blank caller, then triggeredBy",
			`{"event":"CHANGE_CASE_STATUS","payload":{"changeStatus":{"newStatus":"Closed","caller":"","triggeredBy":"ann@clinic.example"}}}`,
			"", &Actor{Email: "ann@clinic.example"}, "Status changed to Closed by ann@clinic.example"},
		{"null caller everywhere",
			`{"event":"CHANGE_CASE_STATUS","caller":null,"payload":{"caller":null,"changeStatus":{"newStatus":"Closed","caller":null}}}`,
			"", nil, "Status changed to Closed"},
	}
	for _, tt := range tests {
		ev, err := Decode(CaseUpdates, "", []byte(tt.body), Options{})
		require.NoError(t, err, tt.name)
		require.Equal(t, tt.actor, ev.Actor, tt.name)
		require.Equal(t, tt.agent, ev.AgentID, tt.name)
		require.Equal(t, tt.summary, ev.Summary, tt.name)
	}
}

// A form's respondent may be the case's customer, a patient: the actor and
// the summary, which analysts read without PHI, do not name them, however
// the payload carries the response (under "response", flat, or under an
// undocumented event name that reads it generically).
func TestFormRespondentIsNotNamed(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"event":"ADD_FORM_RESPONSE","payload":{"form":{"id":"fm-1"},"response":{"id":"rs-1","text":"yes","respondent":{"id":"p-9","firstName":"Jordan","lastName":"Patient"}}}}`,
		`{"event":"ADD_FORM_RESPONSE","payload":{"id":"rs-1","text":"yes","respondent":{"id":"p-9","firstName":"Jordan","lastName":"Patient"}}}`,
		`{"event":"ADD_FORM_RESPONSE","payload":{"response":{"id":"rs-1","respondent":"jordan.patient@example.org"}}}`,
		`{"event":"ADD_SURVEY_RESPONSE","payload":{"response":{"id":"rs-1","respondent":{"id":"p-9","firstName":"Jordan","lastName":"Patient"}}}}`,
	} {
		ev, err := Decode(CaseUpdates, "", []byte(body), Options{})
		require.NoError(t, err, body)
		require.Nil(t, ev.Actor, body)
		require.Empty(t, ev.AgentID, body)
		require.NotContains(t, strings.ToLower(ev.Summary), "jordan", body)
		require.NotContains(t, ev.Summary, "p-9", body)
	}
}

func TestWorkItemTimePrefersClosedThenCreated(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ body, want string }{
		{`{"timestamp":"2024-01-01T00:00:03Z","createdAt":"2024-01-01T00:00:01Z","closedAt":"2024-01-01T00:00:02Z"}`, "2024-01-01T00:00:02Z"},
		{`{"timestamp":"2024-01-01T00:00:03Z","createdAt":"2024-01-01T00:00:01Z","closedAt":null}`, "2024-01-01T00:00:01Z"},
		{`{"timestamp":"2024-01-01T00:00:03Z"}`, "2024-01-01T00:00:03Z"},
	} {
		ev, err := Decode(ServiceHooks, "workitem-closed", []byte(tt.body), Options{})
		if err != nil || ev.OccurredAt == nil || ev.OccurredAt.Format(time.RFC3339) != tt.want {
			t.Errorf("%s: got %v, %v; want %s", tt.body, ev.OccurredAt, err, tt.want)
		}
	}
}

// A case update's agent id is the platform user who acted in the event: the
// caller of a change, the one who added a comment, attachment or payment.
// People the payload names for another reason stay only in the actor; who
// made an object (its author, uploader, respondent or creator) is not the
// actor of a later event on it, nor is the full case's creator the actor of
// an event sent with the case.
func TestCaseUpdateAgentID(t *testing.T) {
	t.Parallel()
	const fullCase = `"id":"c-1","caseNumber":"CV-1","status":"Open","referenceDate":"2024-05-14T08:55:00Z"`
	tests := []struct {
		name, body string
		agent      string
		actor      *Actor
	}{
		{"status changed by a caller",
			`{"event":"CHANGE_CASE_STATUS","payload":{"changeStatus":{"newStatus":"Closed","caller":{"id":"u-1","firstName":"Ann","lastName":"Lee"}}}}`,
			"u-1", &Actor{ID: "u-1", Name: "Ann Lee"}},
		{"escalated, full case",
			`{"event":"ESCALATE_CASE","payload":{` + fullCase + `,"escalated":{"caseId":"c-1","isEscalated":true,"caller":{"id":"u-2"}}}}`,
			"u-2", &Actor{ID: "u-2"}},
		{"comment author as the seed shows it, without an id",
			`{"event":"ADD_CASE_COMMENT","payload":{"comment":{"id":"cm-1","author":{"firstName":"Ann","lastName":"Lee"}}}}`,
			"", &Actor{Name: "Ann Lee"}},
		{"comment author with an id",
			`{"event":"ADD_CASE_COMMENT","payload":{"comment":{"id":"cm-1","author":{"id":"u-1","firstName":"Ann","lastName":"Lee"}}}}`,
			"u-1", &Actor{ID: "u-1", Name: "Ann Lee"}},
		{"attachment uploader with an id",
			`{"event":"ADD_CASE_ATTACHMENT","payload":{"attachment":{"id":"at-1","uploadedBy":{"id":"u-3","firstName":"Cara","lastName":"Diaz"}}}}`,
			"u-3", &Actor{ID: "u-3", Name: "Cara Diaz"}},
		{"payment added by its creator",
			`{"event":"PAYMENT_ADDED","payload":{"payment":{"id":"pm-1","status":"Pending","createdBy":{"id":"u-1","email":"ann@clinic.example"}}}}`,
			"u-1", &Actor{ID: "u-1", Email: "ann@clinic.example"}},
		{"payment added, flat",
			`{"event":"PAYMENT_ADDED","payload":{"id":"pm-1","status":"Pending","createdBy":{"id":"u-1"}}}`,
			"u-1", &Actor{ID: "u-1"}},
		{"payment completed: its creator added it earlier",
			`{"event":"PAYMENT_COMPLETED","payload":{"payment":{"id":"pm-1","status":"Completed","createdBy":{"id":"u-1"}}}}`,
			"", nil},
		{"payment completed, flat",
			`{"event":"PAYMENT_COMPLETED","payload":{"id":"pm-1","status":"Completed","createdBy":{"id":"u-1"}}}`,
			"", nil},
		{"payment completed by a caller beside it",
			`{"event":"PAYMENT_COMPLETED","payload":{"caller":{"id":"u-2"},"payment":{"id":"pm-1","status":"Completed","createdBy":{"id":"u-1"}}}}`,
			"u-2", &Actor{ID: "u-2"}},
		{"unknown event on an existing comment: its author wrote it earlier",
			`{"event":"UPDATE_CASE_COMMENT","payload":{"comment":{"id":"cm-1","author":{"id":"u-1","firstName":"Ann","lastName":"Lee"}}}}`,
			"", nil},
		{"unknown event on a form response: its respondent answered earlier",
			`{"event":"DELETE_FORM_RESPONSE","payload":{"response":{"id":"rs-1","respondent":{"id":"u-4"}}}}`,
			"", nil},
		{"form respondent may be the customer",
			`{"event":"ADD_FORM_RESPONSE","payload":{"response":{"id":"rs-1","respondent":{"id":"u-4","firstName":"Dan","lastName":"Ito"}}}}`,
			"", nil},
		{"form response added by a caller",
			`{"event":"ADD_FORM_RESPONSE","payload":{"caller":{"id":"u-1"},"response":{"id":"rs-1","respondent":{"id":"u-4","firstName":"Dan","lastName":"Ito"}}}}`,
			"u-1", &Actor{ID: "u-1"}},
		{"assignee is not who acted",
			`{"event":"ADD_CASE_ASSIGNEE","payload":{"assignees":[{"assignee":{"id":"u-5","firstName":"Bob","lastName":"Ray"}}]}}`,
			"", &Actor{ID: "u-5", Name: "Bob Ray"}},
		{"assignee added by a caller",
			`{"event":"ADD_CASE_ASSIGNEE","payload":{"caller":{"id":"u-1"},"assignees":[{"assignee":{"id":"u-5"}}]}}`,
			"u-1", &Actor{ID: "u-1"}},
		{"case created, full case as payload",
			`{"event":"CREATE_CASE","payload":{` + fullCase + `,"createdBy":{"id":"u-1"}}}`,
			"u-1", &Actor{ID: "u-1"}},
		{"case created, case object",
			`{"event":"CREATE_CASE","payload":{"case":{` + fullCase + `,"createdBy":{"id":"u-1"}}}}`,
			"u-1", &Actor{ID: "u-1"}},
		{"the full case's creator made the case, not this event",
			`{"event":"ADD_CASE_TAG","payload":{` + fullCase + `,"createdBy":{"id":"u-1"}}}`,
			"", nil},
		{"nor a change sent with the full case",
			`{"event":"CHANGE_CASE_PRIORITY","payload":{` + fullCase + `,"createdBy":{"id":"u-1"},"author":{"id":"u-3"}}}`,
			"", nil},
		{"caller beside the event object",
			`{"event":"DELETE_CASE_COMMENT","payload":{"deletedComment":{"caseCommentId":"cm-1"},"caller":{"id":"u-6"}}}`,
			"u-6", &Actor{ID: "u-6"}},
		{"caller named by e-mail only",
			`{"event":"ARCHIVE_CASE","payload":{"archiveCase":{"caller":"ann@clinic.example"}}}`,
			"", &Actor{Email: "ann@clinic.example"}},
	}
	for _, tt := range tests {
		ev, err := Decode(CaseUpdates, "", []byte(tt.body), Options{})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if ev.AgentID != tt.agent {
			t.Errorf("%s: agent id %q, want %q", tt.name, ev.AgentID, tt.agent)
		}
		if !equalWant(want{Actor: ev.Actor}, want{Actor: tt.actor}) {
			t.Errorf("%s: actor %+v, want %+v", tt.name, ev.Actor, tt.actor)
		}
	}
}

// Payment and order events take the most specific time the platform
// documents for them, in both of its payload modes; a change to an existing
// payment or order is never dated by when that object, or the case, was
// created ("" means none: the receipt time is used).
func TestPaymentAndOrderTimes(t *testing.T) {
	t.Parallel()
	const fullCase = `"id":"c-1","caseNumber":"CV-1","status":"Open","referenceDate":"2024-05-01T08:00:00Z",` +
		`"createdAt":"2024-05-01T08:00:01Z"`
	const payment = `"id":"pm-1","dueDate":"2024-05-28T00:00:00Z","createdAt":"2024-05-14T09:50:00Z"`
	const order = `"id":"or-1","status":"Shipped","message":"x","createdAt":"2024-05-14T10:01:00Z"`
	tests := []caseTime{
		{"payment completed: its payment date",
			`{"event":"PAYMENT_COMPLETED","payload":{"payment":{` + payment + `,"paymentDate":"2024-05-16T13:02:11Z","updatedAt":"2024-05-16T13:02:12Z"}}}`,
			"2024-05-16T13:02:11Z"},
		{"payment completed, flat",
			`{"event":"PAYMENT_COMPLETED","payload":{` + payment + `,"status":"Completed","paymentDate":"2024-05-16T13:02:11Z"}}`,
			"2024-05-16T13:02:11Z"},
		{"payment completed, full case: the payment date before the case's update",
			`{"event":"PAYMENT_COMPLETED","payload":{` + fullCase + `,"updatedAt":"2024-05-17T00:00:00Z","payment":{` + payment + `,"paymentDate":"2024-05-16T13:02:11Z"}}}`,
			"2024-05-16T13:02:11Z"},
		{"payment completed without a payment date: its update",
			`{"event":"PAYMENT_COMPLETED","payload":{"payment":{` + payment + `,"paymentDate":null,"updatedAt":"2024-05-16T13:02:12Z"}}}`,
			"2024-05-16T13:02:12Z"},
		{"payment completed with only its creation time",
			`{"event":"PAYMENT_COMPLETED","payload":{"payment":{` + payment + `,"paymentDate":null}}}`,
			""},
		{"payment added: its creation, not its payment date",
			`{"event":"PAYMENT_ADDED","payload":{"payment":{` + payment + `,"paymentDate":"2024-05-16T13:02:11Z"}}}`,
			"2024-05-14T09:50:00Z"},
		{"order created: its creation",
			`{"event":"ORDER_CREATED","payload":{"order":{` + order + `}}}`,
			"2024-05-14T10:01:00Z"},
		{"order created, flat",
			`{"event":"ORDER_CREATED","payload":{` + order + `}}`,
			"2024-05-14T10:01:00Z"},
		{"order status changed, event data only: no time of its own",
			`{"event":"ORDER_STATUS_CHANGED","payload":{"order":{` + order + `}}}`,
			""},
		{"order status changed, flat",
			`{"event":"ORDER_STATUS_CHANGED","payload":{` + order + `}}`,
			""},
		{"order status changed, flat at the top level: not the order's creation",
			`{"event":"ORDER_STATUS_CHANGED",` + order + `}`,
			""},
		{"order tracking added, event data only",
			`{"event":"ORDER_TRACKING_ADDED","payload":{"order":{` + order + `,"trackingId":"1Z"}}}`,
			""},
		{"order status changed with an update time",
			`{"event":"ORDER_STATUS_CHANGED","payload":{"order":{` + order + `,"updatedAt":"2024-05-15T08:30:00Z"}}}`,
			"2024-05-15T08:30:00Z"},
		{"order status changed, full case: the case's update",
			`{"event":"ORDER_STATUS_CHANGED","payload":{` + fullCase + `,"updatedAt":"2024-05-15T08:30:00Z","order":{` + order + `}}}`,
			"2024-05-15T08:30:00Z"},
		{"order status changed, full case without an update: not the case's creation",
			`{"event":"ORDER_STATUS_CHANGED","payload":{` + fullCase + `,"order":{` + order + `}}}`,
			""},
		{"order status changed with an envelope time stamp",
			`{"event":"ORDER_STATUS_CHANGED","timestamp":"2024-05-15T08:30:05Z","payload":{"order":{` + order + `}}}`,
			"2024-05-15T08:30:05Z"},
	}
	checkCaseTimes(t, tests)
}

// Any case update that changes something which already exists is dated by
// the change: its event object's change or update time, the envelope, or the
// full case's last update. The case's createdAt and referenceDate, and the
// changed object's own createdAt, date what was changed, not the change
// ("" means none: the receipt time is used). Events that add or create
// something are still dated by the created object's createdAt.
func TestCaseChangeTimes(t *testing.T) {
	t.Parallel()
	const fullCase = `"id":"c-1","caseNumber":"CV-1","status":"Open","referenceDate":"2024-05-01T08:00:00Z",` +
		`"createdAt":"2024-05-01T08:00:01Z"`
	const caller = `"caller":{"id":"u-1","firstName":"Ann","lastName":"Lee"}`
	tests := []caseTime{
		{"escalated, full case without an update",
			`{"event":"ESCALATE_CASE","payload":{` + fullCase + `,"escalated":{"caseId":"c-1","isEscalated":true,` + caller + `}}}`,
			""},
		{"escalated, full case: the case's update",
			`{"event":"ESCALATE_CASE","payload":{` + fullCase + `,"updatedAt":"2024-05-15T09:10:00Z","escalated":{"caseId":"c-1","isEscalated":true}}}`,
			"2024-05-15T09:10:00Z"},
		{"de-escalated, full case without an update",
			`{"event":"DEESCALATE_CASE","payload":{` + fullCase + `,"escalated":{"caseId":"c-1","isEscalated":false}}}`,
			""},
		{"archived, full case without an update",
			`{"event":"ARCHIVE_CASE","payload":{` + fullCase + `,"archiveCase":{"caseId":"c-1","isArchived":true,` + caller + `}}}`,
			""},
		{"reopened, full case without an update",
			`{"event":"REOPEN_CASE","payload":{` + fullCase + `,"archiveCase":{"caseId":"c-1","isArchived":false}}}`,
			""},
		{"comment deleted, full case without an update",
			`{"event":"DELETE_CASE_COMMENT","payload":{` + fullCase + `,"deletedComment":{"caseId":"c-1","caseCommentId":"cm-1"}}}`,
			""},
		{"attachment deleted, full case without an update",
			`{"event":"DELETE_ATTACHMENT","payload":{` + fullCase + `,"deletedAttachment":{"caseId":"c-1","caseAttachmentId":"at-1"}}}`,
			""},
		{"assignee removed, full case without an update",
			`{"event":"REMOVE_CASE_ASSIGNEE","payload":{` + fullCase + `,"assignees":[{"assignee":{"id":"u-5"}}]}}`,
			""},
		{"status changed, full case without a change date",
			`{"event":"CHANGE_CASE_STATUS","payload":{` + fullCase + `,"changeStatus":{"caseId":"c-1","newStatus":"Closed"}}}`,
			""},
		{"status changed: its change date",
			`{"event":"CHANGE_CASE_STATUS","payload":{` + fullCase + `,"updatedAt":"2024-05-15T09:10:05Z","changeStatus":{"caseId":"c-1","newStatus":"Closed","changeDate":"2024-05-15T09:10:00Z"}}}`,
			"2024-05-15T09:10:00Z"},
		{"archived with an envelope time stamp",
			`{"event":"ARCHIVE_CASE","timestamp":"2024-05-16T08:00:05Z","payload":{` + fullCase + `,"archiveCase":{"caseId":"c-1","isArchived":true}}}`,
			"2024-05-16T08:00:05Z"},
		{"unknown event, the full case as payload without an update",
			`{"event":"CHANGE_CASE_PRIORITY","payload":{` + fullCase + `,"priority":"High",` + caller + `}}`,
			""},
		{"unknown event, the full case as payload: its update",
			`{"event":"CHANGE_CASE_PRIORITY","payload":{` + fullCase + `,"updatedAt":"2024-05-15T10:00:00Z","priority":"High"}}`,
			"2024-05-15T10:00:00Z"},
		{"unknown event on an existing comment: not the comment's creation",
			`{"event":"UPDATE_CASE_COMMENT","payload":{` + fullCase + `,"comment":{"id":"cm-1","createdAt":"2024-05-14T09:15:00Z"}}}`,
			""},
		{"unknown event on an existing comment, event data only",
			`{"event":"UPDATE_CASE_COMMENT","payload":{"comment":{"id":"cm-1","createdAt":"2024-05-14T09:15:00Z"}}}`,
			""},
		{"unknown event on a payment, the full case with a flag of its own named like an event object",
			`{"event":"PAYMENT_REFUNDED","payload":{` + fullCase + `,"escalated":false,"updatedAt":"2024-05-15T09:00:00Z",` +
				`"payment":{"id":"p-1","status":"Refunded","updatedAt":"2024-05-16T10:00:00Z"}}}`,
			"2024-05-16T10:00:00Z"},
		{"unknown event on an existing comment: its update",
			`{"event":"UPDATE_CASE_COMMENT","payload":{"comment":{"id":"cm-1","createdAt":"2024-05-14T09:15:00Z","updatedAt":"2024-05-15T11:00:00Z"}}}`,
			"2024-05-15T11:00:00Z"},

		// Events that add or create something keep the created object's time.
		{"comment added, full case: the comment's creation",
			`{"event":"ADD_CASE_COMMENT","payload":{` + fullCase + `,"updatedAt":"2024-05-15T09:10:00Z","comment":{"id":"cm-1","createdAt":"2024-05-14T09:15:00Z"}}}`,
			"2024-05-14T09:15:00Z"},
		{"case created: its creation",
			`{"event":"CREATE_CASE","payload":{"case":{` + fullCase + `}}}`,
			"2024-05-01T08:00:01Z"},
		{"unknown creation event: the created object's creation",
			`{"event":"DECISION_CREATED","payload":{` + fullCase + `,"decision":{"id":"d-1","createdAt":"2024-05-14T09:40:10Z"}}}`,
			"2024-05-14T09:40:10Z"},
		{"case created without a creation time: its reference date",
			`{"event":"CREATE_CASE","payload":{"case":{"id":"c-1","caseNumber":"CV-1","referenceDate":"2024-05-01T08:00:00Z"}}}`,
			"2024-05-01T08:00:00Z"},

		// Something added to a case whose own time is not sent was not added
		// when the case was made.
		{"assignee added, full case without an update",
			`{"event":"ADD_CASE_ASSIGNEE","payload":{` + fullCase + `,"assignees":[{"assignee":{"id":"u-5"}}]}}`,
			""},
		{"assignee added, full case: the case's update",
			`{"event":"ADD_CASE_ASSIGNEE","payload":{` + fullCase + `,"updatedAt":"2024-05-15T09:12:00Z","assignees":[{"assignee":{"id":"u-5"}}]}}`,
			"2024-05-15T09:12:00Z"},
		{"tag added, the full case as payload: its update, not its creation",
			`{"event":"ADD_CASE_TAG","payload":{` + fullCase + `,"updatedAt":"2024-05-15T09:14:00Z","tags":["urgent"]}}`,
			"2024-05-15T09:14:00Z"},
		{"tag added, the full case as payload without an update",
			`{"event":"ADD_CASE_TAG","payload":{` + fullCase + `,"tags":["urgent"]}}`,
			""},
	}
	checkCaseTimes(t, tests)

	// Senders that put the fields at the top level, without "payload", get
	// the same times: the root's createdAt is then the case's own, not an
	// envelope's.
	var flat []caseTime
	for _, tt := range tests {
		i := strings.Index(tt.body, `"payload":{`)
		require.Positive(t, i, tt.name)
		require.True(t, strings.HasSuffix(tt.body, "}}"), tt.name)
		body := tt.body[:i] + tt.body[i+len(`"payload":{`):len(tt.body)-2] + "}"
		flat = append(flat, caseTime{tt.name + ", at the top level", body, tt.want})
	}
	checkCaseTimes(t, flat)
}

// caseTime is a case update's body and the time it should be dated by, in
// RFC 3339 ("" means none: the receipt time is used).
type caseTime struct{ name, body, want string }

func checkCaseTimes(t *testing.T, tests []caseTime) {
	t.Helper()
	for _, tt := range tests {
		ev, err := Decode(CaseUpdates, "", []byte(tt.body), Options{})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got := ""
		if ev.OccurredAt != nil {
			got = ev.OccurredAt.Format(time.RFC3339Nano)
		}
		if got != tt.want {
			t.Errorf("%s: occurred at %q, want %q", tt.name, got, tt.want)
		}
	}
}

// A service action is dated by its receipt: the hooks fire as the action
// happens, and neither the case's referenceDate (the same for every hook of
// the case) nor the appointment's time (when it is booked for) is the time
// of the action ("" means none: the receipt time is used).
func TestServiceActionTime(t *testing.T) {
	t.Parallel()
	const appointment = `"appointment":{"date":"2024-05-20","start":870,"timeLocal":"2024-05-20T14:30:00",` +
		`"timeUtc":"2024-05-20T13:30:00Z","timeZoneId":"Europe/London","duration":20}`
	tests := []struct {
		hook, body, want string
	}{
		{"before-resolve", `{"caseId":"c-1","referenceDate":"2024-05-14T08:55:00Z","status":"Serving"}`, ""},
		{"after-resolve", `{"caseId":"c-1","referenceDate":"2024-05-14T08:55:00Z","status":"Resolved"}`, ""},
		{"before-book-appointment", `{"caseId":"c-1","referenceDate":"2024-05-14T08:55:00Z",` + appointment + `}`, ""},
		{"after-check-in", `{"caseId":"c-1","referenceDate":"2024-05-20",` + appointment + `}`, ""},
		{"after-queue-up", `{"caseId":"c-1","referenceDate":"2024-05-14T08:55:00Z","timestamp":"2024-05-14T09:01:02Z"}`, "2024-05-14T09:01:02Z"},
	}
	for _, tt := range tests {
		ev, err := Decode(ServiceActions, tt.hook, []byte(tt.body), Options{})
		if err != nil {
			t.Fatalf("%s: %v", tt.hook, err)
		}
		got := ""
		if ev.OccurredAt != nil {
			got = ev.OccurredAt.Format(time.RFC3339Nano)
		}
		if got != tt.want {
			t.Errorf("%s %s: occurred at %q, want %q", tt.hook, tt.body, got, tt.want)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for cc, ok := range map[string]bool{"": true, "44": true, "1": true, "+44": true, "353": true, "0044": false, "4444": false, "UK": false, "0": false} {
		if err := (Options{DefaultCountryCode: cc}).Validate(); (err == nil) != ok {
			t.Errorf("Validate(%q) = %v", cc, err)
		}
	}
}

// PhoneKeys is what read views mask, so it must hold every name Decode takes
// a phone number from (and nothing it never does): each candidate name is
// tried in every event, at the top level and in the wrappers the decoders
// look into.
func TestPhoneKeysCoverDecode(t *testing.T) {
	t.Parallel()
	keys := map[string]bool{}
	for _, k := range PhoneKeys() {
		if k != FoldKey(k) {
			t.Errorf("PhoneKeys holds %q, which is not folded", k)
		}
		keys[k] = true
	}
	candidates := append(PhoneKeys(),
		"mobile", "mobilenumber", "cell", "cellphone", "tel", "telephone", "contact",
		"caller", "customer", "sms", "line", "address", "id", "value", "dnis", "callee",
		"calledNumber", "recipient", "originator", "source", "e164", "numberE164")
	type event struct {
		kind  Kind
		event string
	}
	var events []event
	for _, kind := range []Kind{ServiceActions, ServiceHooks} {
		for _, e := range KnownEvents(kind) {
			events = append(events, event{kind, e})
		}
	}
	events = append(events, event{CaseUpdates, "CHANGE_CASE_STATUS"}, event{CaseUpdates, "ADD_CASE_COMMENT"})
	read := map[string]bool{}
	for _, e := range events {
		for _, k := range candidates {
			for _, body := range []string{
				`{"event":%[2]q,%[1]q:"+447700900123"}`,
				`{"event":%[2]q,"payload":{%[1]q:"+447700900123"}}`,
				`{"event":%[2]q,"payload":{"case":{%[1]q:"+447700900123"}}}`,
				`{"event":%[2]q,"data":{%[1]q:"+447700900123"}}`,
			} {
				body := fmt.Sprintf(body, k, e.event)
				ev, err := Decode(e.kind, e.event, []byte(body), Options{})
				if err != nil {
					t.Fatalf("%s: %v", body, err)
				}
				if ev.Phone == "" {
					continue
				}
				read[FoldKey(k)] = true
				if !keys[FoldKey(k)] {
					t.Errorf("%s %s reads a phone number from %q, which PhoneKeys lacks", e.kind, e.event, k)
				}
			}
		}
	}
	for k := range keys {
		if !read[k] {
			t.Errorf("PhoneKeys holds %q, which no event reads a phone number from", k)
		}
	}
}

// MayBePhone accepts whatever NormalizePhone accepts under any default
// country code.
func TestMayBePhone(t *testing.T) {
	t.Parallel()
	raws := []string{
		"+447700900123", "07700 900123", "7700 900123", "900123", "12345", "1234",
		"0012345", "01234", "(020) 7946 0958", "555.010.0142", "123456789012345",
		"1234567890123456", "012345678901234", "tel:0161 496 0000", "2024-05-01",
		"42", "A-1001", "Resolved", "", "06 1234 5678", "0549 123456", "0123",
		"8 029 123 45 67", "810 1234567890123", "810 1234567",
	}
	for _, raw := range raws {
		accepted := false
		for cc := range 1000 {
			code := ""
			if cc > 0 {
				code = fmt.Sprint(cc)
			}
			if _, ok := NormalizePhone(raw, code); ok {
				accepted = true
				break
			}
		}
		if got := MayBePhone(raw); got != accepted {
			t.Errorf("MayBePhone(%q) = %v, but some code accepts it: %v", raw, got, accepted)
		}
	}
}

// A work item's id is its own, not that of an envelope that delivers it: a
// root whose work item fields are all in a wrapper names the delivery.
func TestWorkItemIDIsNotTheEnvelopes(t *testing.T) {
	t.Parallel()
	const item = `"id":"ff34b1fb","isOutbound":false,"closedAt":"2022-03-08T07:41:47Z","customerIdentifier":"+447700900123"`
	for body, want := range map[string]string{
		`{"id":"delivery-0001","type":"WorkItemClosed","data":{` + item + `}}`:    "ff34b1fb",
		`{"id":"delivery-0002","type":"WorkItemClosed","payload":{` + item + `}}`: "ff34b1fb",
		`{"id":"delivery-0003","workItem":{` + item + `}}`:                        "ff34b1fb",
		`{"id":"delivery-0004","workItemId":"w-9","data":{` + item + `}}`:         "w-9",
		`{` + item + `}`: "ff34b1fb",
		`{` + item + `,"data":{"id":"attachment-1"}}`:            "ff34b1fb",
		`{"id":"w-2","mediaType":"Voice","data":{` + item + `}}`: "w-2",
		`{"id":"w-3","data":{"note":"no work item fields"}}`:     "w-3",
		`{"data":{"id":"w-4","note":"no work item fields"}}`:     "w-4",
	} {
		ev, err := Decode(ServiceHooks, "workitem-closed", []byte(body), Options{})
		require.NoError(t, err, body)
		require.Equal(t, want, ev.WorkItemID, body)
	}
}

// A queue object's phone number is the line the customer called: never
// taken for the customer's, in any service hook; its name is still the
// queue.
func TestQueuePhoneIsNotTheCustomers(t *testing.T) {
	t.Parallel()
	for event, body := range map[string]string{
		"abandoned-conversation": `{"queue":{"name":"Sales","phoneNumber":"+18005550100"},"customer":{"phoneNumber":"+447700900123"},"timeInQueue":30}`,
		"outbound-call":          `{"queue":{"name":"Sales","phoneNumber":"+18005550100"},"call":{"targetPhoneNumber":"+447700900123"}}`,
		"workitem-closed":        `{"id":"w-1","queue":{"name":"Sales","phoneNumber":"+18005550100"},"customer":{"phoneNumber":"+447700900123"}}`,
	} {
		ev, err := Decode(ServiceHooks, event, []byte(body), Options{})
		require.NoError(t, err, body)
		require.Equal(t, "+447700900123", ev.Phone, body)
		require.Equal(t, "Sales", ev.Queue, body)
	}
	ev, err := Decode(ServiceHooks, "abandoned-conversation", []byte(`{"queue":{"name":"Sales","phoneNumber":"+18005550100"},"timeInQueue":30}`), Options{})
	require.NoError(t, err)
	require.Empty(t, ev.Phone, "no customer number at all")
}
