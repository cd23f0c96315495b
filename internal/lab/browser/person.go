package browser

import (
	"path/filepath"
	"strings"
	"testing"
)

// Person is someone at a page of a Session, for tests of the Passport
// portal: each step fails the test when it fails, after keeping a
// screenshot of what the person was looking at and logging its text.
type Person struct {
	T    testing.TB
	Name string
	Page *Page
	// Base is the service's URL; Shots where screenshots go.
	Base, Shots string
}

// Person opens a page with a browser profile of its own for name.
func (s *Session) Person(t testing.TB, name, base, shots string, o PageOptions) *Person {
	t.Helper()
	page, err := s.NewPage(o)
	if err != nil {
		t.Fatal(err)
	}
	return &Person{T: t, Name: name, Page: page, Base: base, Shots: shots}
}

// Must fails the test on err, showing what the page said.
func (p *Person) Must(err error) {
	p.T.Helper()
	if err != nil {
		shot := filepath.Join(p.Shots, "failed-"+fileName(p.Name)+".png")
		p.Page.Screenshot(shot)
		main, _ := p.Page.Text("body")
		p.T.Fatalf("%s: %v\nthe page (%s) said:\n%s", p.Name, err, shot, main)
	}
}

// Shot keeps a screenshot of the whole page as name.png.
func (p *Person) Shot(name string) {
	p.T.Helper()
	p.Must(p.Page.Screenshot(filepath.Join(p.Shots, name+".png")))
}

// Text is what selector shows.
func (p *Person) Text(selector string) string {
	p.T.Helper()
	s, err := p.Page.Text(selector)
	p.Must(err)
	return s
}

// Open goes to path on the service and wants it answered 200.
func (p *Person) Open(path string) {
	p.T.Helper()
	status, err := p.Page.Goto(p.Base + path)
	p.Must(err)
	if status != 200 {
		main, _ := p.Page.Text("body")
		p.T.Fatalf("%s: %s answered %d: %s", p.Name, path, status, main)
	}
}

// SignIn opens path, which sends a browser without a sign-in to the lab's
// IdP, and signs in there as the person does (the lab's passwords are the
// name and "-lab"); the portal names them when they are back.
func (p *Person) SignIn(path string) {
	p.T.Helper()
	_, err := p.Page.Goto(p.Base + path)
	p.Must(err)
	p.Must(p.Page.SignIn(p.Name, p.Name+"-lab"))
	p.Must(p.Page.WaitFor("#me", p.Name))
}

// fileName keeps the letters and digits of a person's name, for a file.
func fileName(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return -1
	}, name)
}
