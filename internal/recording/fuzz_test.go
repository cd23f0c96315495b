package recording

import (
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"testing"
	"testing/fstest"
)

// FuzzIOLog feeds hostile log.json, timing and stream bytes through the
// parser, the asciicast export and a search: each either works or fails
// with an error, and whatever is exported reads back as asciicast.
func FuzzIOLog(f *testing.F) {
	for _, dir := range []string{"testdata/sudo-terminal", "testdata/sudo-pipe", "testdata/sudo-gzip"} {
		m := mapFS(f, dir)
		f.Add(m["log.json"].Data, m["timing"].Data, m["ttyout"].Data, m["stdout"].Data)
	}
	f.Add([]byte(`{"timestamp":{"seconds":1700000000},"runuser":"u","ttyname":"/dev/pts/1"}`), []byte("4 0.1 3\n5 1 0 0\n7 0 CONT\n6 0,1 1\n"), []byte("a\xc3\xb6\x1b"), []byte{})
	f.Fuzz(func(t *testing.T, info, timing, ttyout, stdout []byte) {
		fsys := fstest.MapFS{
			"log.json": {Data: info},
			"timing":   {Data: timing},
			"ttyout":   {Data: ttyout},
			"ttyin":    {Data: ttyout},
			"stdout":   {Data: stdout},
			"stderr":   {Data: stdout},
			"stdin":    {Data: stdout},
		}
		l, err := Open(fsys)
		if err != nil {
			return
		}
		ev, err := l.Events()
		if err != nil {
			return
		}
		var cast bytes.Buffer
		exportErr := WriteAsciicast(&cast, l.Info, ev)
		ev.Close()
		if exportErr == nil {
			c, err := ReadAsciicast(&cast)
			if err != nil {
				t.Fatalf("the export does not read back: %v\n%s", err, cast.Bytes())
			}
			for {
				if _, err := c.Next(); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatalf("the export does not read back: %v\n%s", err, cast.Bytes())
				}
			}
		}
		ev, err = l.Events()
		if err != nil {
			t.Fatal(err)
		}
		defer ev.Close()
		Grep(regexp.MustCompile("x"), ev, 10)
	})
}

// FuzzAsciicast reads hostile asciicast: an error or events, never a
// panic.
func FuzzAsciicast(f *testing.F) {
	_, cast := exportFile(f, "testdata/sudo-terminal")
	f.Add(cast)
	f.Add([]byte("{\"version\":2,\"width\":80,\"height\":24}\n[1e308, \"o\", \"x\"]\n[1, \"r\", \"1x1\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ReadAsciicast(bytes.NewReader(data))
		if err != nil {
			return
		}
		for i := 0; i < 1<<16; i++ {
			if _, err := c.Next(); err != nil {
				return
			}
		}
	})
}

// exportFile exports the I/O log in dir as asciicast.
func exportFile(t testing.TB, dir string) (Info, []byte) {
	t.Helper()
	l, err := Open(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := l.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	var out bytes.Buffer
	if err := WriteAsciicast(&out, l.Info, ev); err != nil {
		t.Fatal(err)
	}
	return l.Info, out.Bytes()
}
