package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/passport-access/terraform-provider-passport/internal/api"
)

// RecordingFilter narrows a listing or search of recordings.
type RecordingFilter struct {
	Request string
	Target  string
}

func (f RecordingFilter) query() url.Values {
	q := url.Values{}
	if f.Request != "" {
		q.Set("request", f.Request)
	}
	if f.Target != "" {
		q.Set("target", f.Target)
	}
	return q
}

// Recordings lists the recorded sessions the caller may see.
func (c *Client) Recordings(ctx context.Context, f RecordingFilter) ([]api.Recording, error) {
	var out api.RecordingList
	return out.Recordings, c.do(ctx, http.MethodGet, api.PathRecordings, f.query(), nil, nil, &out)
}

// Recording describes one recording, id being request/target/session.
func (c *Client) Recording(ctx context.Context, id string) (api.Recording, error) {
	var out api.Recording
	return out, c.do(ctx, http.MethodGet, api.PathRecordings+"/"+id, nil, nil, nil, &out)
}

// DeleteRecording deletes one recording (request/target/session) before
// its retention ends, for reason, which the audit trail keeps with the
// caller's name.
func (c *Client) DeleteRecording(ctx context.Context, id, reason string) error {
	return c.do(ctx, http.MethodDelete, api.PathRecordings+"/"+id, nil, nil, api.DeleteRecording{Reason: reason}, nil)
}

// GrepRecordings searches the recordings the caller may see for lines
// matching pattern (RE2 syntax).
func (c *Client) GrepRecordings(ctx context.Context, pattern string, f RecordingFilter) (api.RecordingMatches, error) {
	q := f.query()
	q.Set("pattern", pattern)
	var out api.RecordingMatches
	return out, c.do(ctx, http.MethodGet, api.PathRecordingsGrep, q, nil, nil, &out)
}

// RecordingCast opens a recording as asciicast v2, streamed: a long
// session is more than any answer this client buffers. Close it when
// done.
func (c *Client) RecordingCast(ctx context.Context, id string) (io.ReadCloser, error) {
	return c.recordingStream(ctx, api.PathRecordings+"/"+id+"/asciicast")
}

// RecordingEvents opens a Windows event session's events as JSON lines,
// as they were collected. Close it when done.
func (c *Client) RecordingEvents(ctx context.Context, id string) (io.ReadCloser, error) {
	return c.recordingStream(ctx, api.PathRecordings+"/"+id+"/events")
}

func (c *Client) recordingStream(ctx context.Context, path string) (io.ReadCloser, error) {
	token := c.bearer()
	resp, err := c.stream(ctx, path, token)
	if err == nil && resp.StatusCode == http.StatusUnauthorized && c.renew != nil {
		resp.Body.Close()
		if token, err = c.renew.again(ctx, token); err != nil {
			return nil, fmt.Errorf("signing in to the Passport service at %s again: %w", c.base.Redacted(), err)
		}
		resp, err = c.stream(ctx, path, token)
	}
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, decodeError(resp.StatusCode, raw)
	}
	return resp.Body, nil
}

func (c *Client) stream(ctx context.Context, path, token string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.JoinPath(path).String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/x-asciicast, application/x-ndjson, application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling the Passport service at %s: %w", c.base.Redacted(), err)
	}
	return resp, nil
}
