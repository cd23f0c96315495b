package winpass

import (
	"strings"
	"testing"
)

func TestGenerate(t *testing.T) {
	seen := make(map[string]bool)
	for i := 0; i < 10000; i++ {
		pw, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) != DefaultLength {
			t.Fatalf("length %d, want %d", len(pw), DefaultLength)
		}
		if strings.Trim(pw, Alphabet) != "" {
			t.Fatal("a character outside Alphabet")
		}
		if err := Check(pw, "pp-user"); err != nil && !strings.Contains(strings.ToLower(pw), "pp-user") {
			t.Fatalf("a generated password fails Check: %v", err)
		}
		for _, set := range []string{uppers, lowers, digits, symbols} {
			if !strings.ContainsAny(pw, set) {
				t.Fatalf("a password lacks one of %q", set)
			}
		}
		if seen[pw] {
			t.Fatal("a password repeated")
		}
		seen[pw] = true
	}
}

func TestAlphabet(t *testing.T) {
	for _, c := range "\"'`\\ \t%^&|<>$;{}[]()=,:0Oo1lIyYzZ" {
		if strings.ContainsRune(Alphabet, c) {
			t.Errorf("Alphabet holds %q", c)
		}
	}
	if uppers+lowers+digits+symbols != Alphabet {
		t.Error("the class sets do not make up Alphabet")
	}
	for i := 0; i < len(Alphabet); i++ {
		if strings.Count(Alphabet, Alphabet[i:i+1]) != 1 {
			t.Errorf("%q appears twice", Alphabet[i])
		}
	}
}

func TestCheck(t *testing.T) {
	good := "Abcdefghijkmnpqrstuvwx23!#" // 26 chars, all classes
	cases := []struct {
		name, pw, user, want string
	}{
		{"good", good, "pp-a", ""},
		{"short", good[:23], "pp-a", "shorter"},
		{"long", strings.Repeat(good, 6), "pp-a", "longer"},
		{"outside alphabet", good + "0", "pp-a", "outside"},
		{"space", good + " ", "pp-a", "outside"},
		{"no upper", strings.ToLower(good), "pp-a", "upper"},
		{"no lower", "ABCDEFGHJKLMNPQRSTUVWX23!#", "pp-a", "lower"},
		{"no digit", "Abcdefghijkmnpqrstuvwx!#*+", "pp-a", "digit"},
		{"no symbol", "Abcdefghijkmnpqrstuvwx2345", "pp-a", "symbol"},
		{"username", good + "PP-ABC", "pp-abc", "username"},
		{"short username ignored", good, "bc", ""},
	}
	for _, c := range cases {
		err := Check(c.pw, c.user)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error about %s", c.name, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), c.pw) {
			t.Errorf("%s: the error echoes the password", c.name)
		}
	}
}
