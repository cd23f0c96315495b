package notify

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// Whatever a requester writes in a reason or an approver in a comment,
// Slack gets valid JSON whose text holds no markup of theirs: no '<' or
// '>' (mentions, links) beyond Passport's own lead, and no block over
// Slack's limits.
func FuzzSlackMessage(f *testing.F) {
	for _, s := range []string{"INC-1 disk full", "<!channel> <!here|here> <@U123>", "<https://evil.example|click>", "a & b > c", strings.Repeat("é<", 2000), "```", "\x00\u202e"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, reason, comment string) {
		if !utf8.ValidString(reason) || !utf8.ValidString(comment) {
			return // the access core refuses both before they are recorded
		}
		at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
		g := ledger.Grant{ID: "ar-1", Requester: "alice", Reason: reason, Targets: []ledger.Target{{InstanceID: "i-0123456789abcdef0"}}}
		for _, kind := range ledger.NoticeKinds() {
			n := ledger.Notice{Seq: 1, Kind: kind, At: at, By: "carol", Detail: comment, IssuedAt: at, ExpiresAt: at.Add(time.Hour), Deadline: at}
			body, err := json.Marshal(slackMessage(NewEvent(g, n)))
			if err != nil {
				t.Fatal(err)
			}
			var m struct {
				Text   string `json:"text"`
				Blocks []struct {
					Text *struct {
						Text string `json:"text"`
					} `json:"text"`
				} `json:"blocks"`
			}
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			texts := []string{m.Text}
			for _, b := range m.Blocks {
				if b.Text != nil {
					texts = append(texts, b.Text.Text)
				}
			}
			for _, s := range texts {
				s = strings.TrimPrefix(strings.TrimPrefix(s, ":rotating_light: <!here> "), ":warning: <!here> ")
				if strings.ContainsAny(s, "<>") || utf8.RuneCountInString(s) > 3000 {
					t.Fatalf("%s: Slack text carries markup or is too long (%d): %.200q", kind, utf8.RuneCountInString(s), s)
				}
			}
		}
	})
}
