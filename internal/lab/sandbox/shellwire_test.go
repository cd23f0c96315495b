package sandbox

import (
	"bytes"
	"net/url"
	"testing"
)

func TestShellQueryRefusesBadInput(t *testing.T) {
	good := shellQuery{User: "ssm-user", Command: "id; echo 'x'", Terminal: true, Cols: 80, Rows: 24}
	got, err := decodeShellQuery(mustQuery(t, good.encode()))
	if err != nil || got != good {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, raw := range []string{
		"user=&cols=0&rows=0",
		"user=root%3Brm&cols=0&rows=0",
		"user=-oops&cols=0&rows=0",
		"user=Root&cols=0&rows=0",
		"user=ssm-user&cols=x&rows=0",
		"user=ssm-user&cols=-1&rows=0",
		"user=ssm-user&cols=65536&rows=1",
		"user=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&cols=1&rows=1",
	} {
		if q, err := decodeShellQuery(mustQuery(t, raw)); err == nil {
			t.Errorf("%s was accepted as %+v", raw, q)
		}
	}
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// FuzzShellFrame: whatever arrives, a frame is read whole or refused,
// never larger than maxShellFrame, and what is written reads back.
func FuzzShellFrame(f *testing.F) {
	f.Add([]byte{frameOutput, 0, 0, 0, 2, 'h', 'i'})
	f.Add([]byte{frameExit, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, data, err := readShellFrame(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(data) > maxShellFrame {
			t.Fatalf("a frame of %d bytes was read", len(data))
		}
		var buf bytes.Buffer
		writeShellFrame(&buf, typ, data)
		if !bytes.Equal(buf.Bytes(), b[:5+len(data)]) {
			t.Fatalf("frame does not read back the same")
		}
	})
}
