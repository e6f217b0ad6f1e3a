package report

import (
	"encoding/json"
	"io"
	"math"
	"slices"
	"strconv"
)

// AppendJSON appends the report as encoding/json would write it. A month at
// PT15M by queue has tens of thousands of cells, which reflection takes
// longer to encode than the figures take to compute; the cells are written
// by hand, the few maps through encoding/json.
func (r *Report) AppendJSON(b []byte) ([]byte, error) {
	cells := 1
	for _, g := range r.Results {
		cells += len(g.Intervals)
	}
	return r.encode(slices.Grow(b, 4096+cells*(700+60*len(r.Totals.DurationBuckets))), nil)
}

// WriteJSON writes what AppendJSON appends to w, a chunk at a time, so that
// a large report is sent while it is encoded and never held whole.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := r.encode(make([]byte, 0, 128<<10), func(b []byte) ([]byte, error) {
		_, err := w.Write(b)
		return b[:0], err
	})
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// flushAt is the size at which encode hands its buffer to flush.
const flushAt = 64 << 10

// encode appends the report to b, handing b to flush (when not nil)
// whenever it has grown past flushAt.
func (r *Report) encode(b []byte, flush func([]byte) ([]byte, error)) ([]byte, error) {
	b = append(b, `{"query":`...)
	b, err := appendMarshal(b, r.Query)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"definitions":`...)
	if b, err = appendMarshal(b, r.Definitions); err != nil {
		return nil, err
	}
	b = append(b, `,"dataAsOf":`...)
	if r.DataAsOf == nil {
		b = append(b, "null"...)
	} else if b, err = appendMarshal(b, r.DataAsOf); err != nil {
		return nil, err
	}
	b = append(b, `,"results":`...)
	if r.Results == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.Results {
			if i > 0 {
				b = append(b, ',')
			}
			g := &r.Results[i]
			b = append(b, `{"group":`...)
			if b, err = appendMarshal(b, g.Group); err != nil {
				return nil, err
			}
			b = append(b, `,"intervals":`...)
			if g.Intervals == nil {
				b = append(b, "null"...)
			} else {
				b = append(b, '[')
				for j := range g.Intervals {
					if j > 0 {
						b = append(b, ',')
					}
					iv := &g.Intervals[j]
					b = append(b, `{"start":`...)
					b = appendString(b, iv.Start)
					b = append(b, `,"end":`...)
					b = appendString(b, iv.End)
					b = append(b, ',')
					b = iv.Metrics.appendFields(b)
					b = append(b, '}')
					if flush != nil && len(b) >= flushAt {
						var err error
						if b, err = flush(b); err != nil {
							return nil, err
						}
					}
				}
				b = append(b, ']')
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"totals":{`...)
	b = r.Totals.appendFields(b)
	return append(b, "}}"...), nil
}

func appendMarshal(b []byte, v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	return append(b, raw...), err
}

// appendFields writes the metrics' fields, without braces.
func (m *Metrics) appendFields(b []byte) []byte {
	b = appendInt(b, `"abandoned":`, m.Abandoned)
	b = appendInt(b, `,"shortAbandoned":`, m.ShortAbandoned)
	b = appendInt(b, `,"abandonedExclShort":`, m.AbandonedExclShort)
	b = appendInt(b, `,"uniqueCallers":`, m.UniqueCallers)
	b = appendInt(b, `,"repeatAbandoners":`, m.RepeatAbandoners)
	s := &m.TimeInQueue
	b = appendInt(b, `,"timeInQueue":{"count":`, s.Count)
	b = append(b, `,"sum":`...)
	b = appendFloat(b, s.Sum)
	b = appendOptFloat(b, `,"avg":`, s.Avg)
	b = appendOptFloat(b, `,"min":`, s.Min)
	b = appendOptFloat(b, `,"max":`, s.Max)
	b = appendOptFloat(b, `,"p50":`, s.P50)
	b = appendOptFloat(b, `,"p90":`, s.P90)
	b = appendOptFloat(b, `,"p95":`, s.P95)
	b = append(b, `},"durationBuckets":`...)
	if m.DurationBuckets == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, k := range m.DurationBuckets {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"label":`...)
			b = appendString(b, k.Label)
			if k.Le != nil {
				b = appendInt(b, `,"le":`, *k.Le)
			}
			if k.Gt != nil {
				b = appendInt(b, `,"gt":`, *k.Gt)
			}
			b = appendInt(b, `,"count":`, k.Count)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendInt(b, `,"calledBack":`, m.CalledBack)
	b = appendInt(b, `,"notCalledBack":`, m.NotCalledBack)
	b = appendOptFloat(b, `,"calledBackRate":`, m.CalledBackRate)
	b = appendOptFloat(b, `,"timeToCallback":{"avg":`, m.TimeToCallback.Avg)
	b = appendOptFloat(b, `,"p50":`, m.TimeToCallback.P50)
	b = appendOptFloat(b, `,"p90":`, m.TimeToCallback.P90)
	b = append(b, `},"handledInbound":`...)
	if m.HandledInbound == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(*m.HandledInbound), 10)
	}
	return appendOptFloat(b, `,"abandonRateEstimated":`, m.AbandonRateEstimated)
}

func appendInt(b []byte, key string, n int) []byte {
	return strconv.AppendInt(append(b, key...), int64(n), 10)
}

func appendOptFloat(b []byte, key string, f *float64) []byte {
	b = append(b, key...)
	if f == nil {
		return append(b, "null"...)
	}
	return appendFloat(b, *f)
}

// appendFloat formats as encoding/json does: the shortest representation,
// with an exponent only for very large or very small magnitudes.
func appendFloat(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(b, "null"...) // never produced; encoding/json would refuse
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendString writes s as a JSON string; the strings written here (times,
// bucket labels) need no escaping, which is checked.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			raw, _ := json.Marshal(s)
			return append(b, raw...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
