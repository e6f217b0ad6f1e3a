package normalize

import "testing"

// BenchmarkDecode decodes the example mix, one body per iteration in turn.
func BenchmarkDecode(b *testing.B) {
	files := eventFiles(b)
	bodies := make([][]byte, len(files))
	total := 0
	for i, f := range files {
		bodies[i] = readFile(b, f.path)
		total += len(bodies[i])
	}
	opts := Options{DefaultCountryCode: "44"}
	b.SetBytes(int64(total / len(files)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f := files[i%len(files)]
		if _, err := Decode(f.kind, f.pathEvent, bodies[i%len(files)], opts); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
