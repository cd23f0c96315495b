package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	for _, name := range []string{"bookworm", "12"} {
		if r, err := Lookup(name); err != nil || r.Name != "bookworm" {
			t.Errorf("Lookup(%q) = %+v, %v", name, r, err)
		}
	}
	if _, err := Lookup("buster"); err == nil || !strings.Contains(err.Error(), "bullseye (11)") {
		t.Errorf("Lookup(buster): %v; want a refusal naming the releases", err)
	}
}

// TestArchiveIn reads the machine's apt sources in both formats, and never
// takes the security archive, a source without http(s), or an option
// list for the archive.
func TestArchiveIn(t *testing.T) {
	for _, tt := range []struct{ name, content, want string }{
		{"deb822", "Types: deb\nURIs: http://archive.example/debian\nSuites: bookworm\n", "http://archive.example/debian"},
		{"one-line with options", "deb [arch=amd64 signed-by=/k.gpg] https://archive.example/debian/ bookworm main\n", "https://archive.example/debian"},
		{"security only", "URIs: http://archive.example/debian-security\n", ""},
		{"another archive", "deb http://packages.example/apt stable main\n", ""},
		{"not http", "URIs: file:///srv/debian\n", ""},
		{"security first", "deb http://archive.example/debian-security bookworm-security main\ndeb http://archive.example/debian bookworm main\n", "http://archive.example/debian"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sources")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := archiveIn(path); got != tt.want {
				t.Errorf("archiveIn = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFindSaysHowToBuild(t *testing.T) {
	_, err := Find(t.TempDir(), "trixie")
	if err == nil || !strings.Contains(err.Error(), "passport lab rootfs build --release trixie") {
		t.Fatalf("Find in an empty cache: %v", err)
	}
}
