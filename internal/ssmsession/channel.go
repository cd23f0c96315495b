package ssmsession

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// link is one websocket connection; *websocket.Conn satisfies it. A data
// channel outlives its links: when one drops, a resumed session attaches
// the next and unacknowledged messages are sent again.
type link interface {
	ReadMessage() (messageType int, p []byte, err error)
	WriteMessage(messageType int, data []byte) error
	Close() error
}

// Tuning of the reliability layer. The reference implementations send 1 KiB
// per message, keep up to 10,000 unacknowledged and sleep a millisecond
// between reads, which caps a session near 1 MB/s. Larger messages and a
// bounded window keep every check the protocol requires (a digest and an
// acknowledgement per message) and still move data at memory speed.
const (
	chunkSize   = 16 << 10 // payload bytes per stream message
	window      = 512      // unacknowledged messages a sender may have in flight
	queueBytes  = 8 << 20  // in-order data received but not yet read
	oooCapacity = 2 * window

	initialRTO  = 200 * time.Millisecond
	minRTO      = 100 * time.Millisecond
	maxRTO      = 2 * time.Second
	granularity = 10 * time.Millisecond
	// maxResends bounds how often one message is sent again while a link is
	// up before the session is declared dead.
	maxResends = 200
	// resendBurst bounds the messages sent again per tick, so a receiver that
	// is only slow is not flooded with copies.
	resendBurst = 32
)

// Channel errors.
var (
	ErrClosed         = errors.New("ssmsession: session closed")
	ErrUnacknowledged = errors.New("ssmsession: the other end stopped acknowledging messages")
)

// ClosedError reports a channel_closed message from the other end.
type ClosedError struct {
	SessionID string
	Output    string
}

func (e *ClosedError) Error() string {
	if e.Output == "" {
		return fmt.Sprintf("ssmsession: session %s was closed by the other end", e.SessionID)
	}
	return fmt.Sprintf("ssmsession: session %s was closed by the other end: %s", e.SessionID, e.Output)
}

// held is a message received ahead of the reader: early, or in order while
// the queue is full. acked says whether its acknowledgement went out: past
// oooCapacity held messages, acknowledgements wait until the reader makes
// room, so the sender's window, not this buffer, is what stops it.
type held struct {
	m     Message
	acked bool
}

type outgoing struct {
	frame   []byte
	sent    time.Time
	resends int
	// writers counts writes of frame under way outside mu; acked is set
	// once the other end has it. The frame's buffer goes back to the pool
	// when both say it may: acknowledged, and no write still reading it.
	writers int
	acked   bool
}

// frames recycles the buffers outgoing stream messages are encoded into:
// every message is kept until acknowledged, and at tunnel speeds
// allocating one per message made the collector a tenth of the work.
var frames = sync.Pool{New: func() any { b := make([]byte, 0, HeaderSize+chunkSize); return &b }}

// retain marks o's frame as being written; mu is held.
func (o *outgoing) retain() { o.writers++ }

// release ends a write of o's frame; mu is held.
func (o *outgoing) release() {
	o.writers--
	o.recycle()
}

// recycle gives o's frame back once it is acknowledged and no write reads
// it any more; mu is held.
func (o *outgoing) recycle() {
	if o.acked && o.writers == 0 && o.frame != nil {
		if cap(o.frame) == HeaderSize+chunkSize {
			b := o.frame[:0]
			frames.Put(&b)
		}
		o.frame = nil
	}
}

// written releases the writes of out once they are done.
func (c *channel) written(out []*outgoing) {
	c.mu.Lock()
	for _, o := range out {
		o.release()
	}
	c.mu.Unlock()
}

// channel is the reliable, ordered message stream of one session, shared by
// both ends: sequence numbers, selective acknowledgements, a receive buffer
// for out-of-order messages and retransmission on a round-trip-time timer.
type channel struct {
	sendType, recvType string
	now                func() time.Time
	onLinkDown         func(error) // called (once per link) when a link fails

	linkMu sync.Mutex
	link   link
	batch  *batchConn // under link, when its connection batches writes
	// ackAtIdle is set while the link's connection calls flushAcks before
	// each network read: the reader then queues acknowledgements instead
	// of writing each at once.
	ackAtIdle atomic.Bool
	writeMu   sync.Mutex // one writer at a time on a websocket; release with unlockWrite

	ackMu sync.Mutex
	acks  [][]byte // acknowledgements waiting for writeMu

	mu       sync.Mutex
	space    *sync.Cond // window space, or closed
	nextSeq  int64
	base     int64 // no message below base is unacknowledged
	unacked  map[int64]*outgoing
	reserved int
	srtt     time.Duration
	rttvar   time.Duration
	rto      time.Duration

	rmu       sync.Mutex
	ready     *sync.Cond // queue not empty, or closed
	expected  int64
	queue     []Message // in order, acknowledged, not yet read
	queued    int       // payload bytes in queue
	ooo       map[int64]held
	badFrames int

	done     chan struct{}
	closeErr error
	once     sync.Once
}

func newChannel(sendType, recvType string, now func() time.Time) *channel {
	if now == nil {
		now = time.Now
	}
	c := &channel{
		sendType: sendType, recvType: recvType, now: now,
		unacked: make(map[int64]*outgoing),
		ooo:     make(map[int64]held),
		rto:     initialRTO,
		done:    make(chan struct{}),
	}
	c.space = sync.NewCond(&c.mu)
	c.ready = sync.NewCond(&c.rmu)
	go c.retransmit()
	return c
}

// attach makes l the channel's link, sends every unacknowledged message on
// it again, and reads from it until it fails.
func (c *channel) attach(l link) { c.attachBatch(l, batchOf(l)) }

// attachBatch is attach for a link whose network connection is b (nil when
// its writes cannot be batched).
func (c *channel) attachBatch(l link, b *batchConn) {
	c.linkMu.Lock()
	old, oldBatch := c.link, c.batch
	c.link, c.batch = l, b
	c.linkMu.Unlock()
	if oldBatch != nil {
		oldBatch.setIdle(nil)
	}
	if b != nil {
		b.setIdle(c.flushAcks)
	}
	c.ackAtIdle.Store(b != nil)
	if old != nil {
		old.Close()
	}
	c.rmu.Lock()
	c.badFrames = 0 // counted per link
	c.rmu.Unlock()
	select {
	case <-c.done:
		l.Close()
		return
	default:
	}

	c.writeMu.Lock()
	c.mu.Lock()
	var resend []*outgoing
	for seq := c.base; seq < c.nextSeq; seq++ {
		if o := c.unacked[seq]; o != nil {
			o.sent = c.now()
			o.retain()
			resend = append(resend, o)
		}
	}
	c.mu.Unlock()
	batch := make([][]byte, len(resend))
	for i, o := range resend {
		batch[i] = o.frame
	}
	c.writeFrames(l, batch...)
	c.written(resend)
	c.unlockWrite()
	go c.readLoop(l)
}

// current returns the link messages go out on, or nil between links.
func (c *channel) current() link {
	c.linkMu.Lock()
	defer c.linkMu.Unlock()
	return c.link
}

// writeFrames writes frames on l, in one network write when l's connection
// batches; writeMu is held.
func (c *channel) writeFrames(l link, frames ...[]byte) error {
	c.linkMu.Lock()
	b := c.batch
	if c.link != l {
		b = nil
	}
	c.linkMu.Unlock()
	if b != nil {
		b.begin()
	}
	var err error
	for _, f := range frames {
		if err = l.WriteMessage(websocket.BinaryMessage, f); err != nil {
			break
		}
	}
	if b != nil {
		if e := b.end(); err == nil {
			err = e
		}
	}
	return err
}

// dropLink forgets l if it is still the current link and reports the
// failure once.
func (c *channel) dropLink(l link, err error) {
	c.linkMu.Lock()
	cur := c.link == l
	var b *batchConn
	if cur {
		c.link, c.batch, b = nil, nil, c.batch
	}
	c.linkMu.Unlock()
	l.Close()
	if !cur {
		return
	}
	if b != nil {
		b.setIdle(nil)
	}
	c.ackAtIdle.Store(false)
	select {
	case <-c.done:
		return
	default:
	}
	if c.onLinkDown != nil {
		c.onLinkDown(err)
	} else {
		c.close(fmt.Errorf("ssmsession: websocket failed: %w", err))
	}
}

// unlockWrite releases writeMu and sends the acknowledgements that queued
// up meanwhile.
func (c *channel) unlockWrite() {
	c.writeMu.Unlock()
	c.flushAcks()
}

// maxQueuedAcks bounds acknowledgements waiting to be written; beyond it
// they are dropped and the sender's retransmission brings them back.
const maxQueuedAcks = 4 * window

// flushAcks sends the queued acknowledgements, never waiting for writeMu.
// The reader must not wait behind a data write stuck on a full socket: if
// both ends' readers did, neither would drain the other's socket and the
// session would hang. Whoever holds writeMu sends the queued
// acknowledgements when it lets go (unlockWrite).
func (c *channel) flushAcks() {
	for {
		c.ackMu.Lock()
		pending := len(c.acks) > 0
		c.ackMu.Unlock()
		if !pending || !c.writeMu.TryLock() {
			return
		}
		c.ackMu.Lock()
		acks := c.acks
		c.acks = nil
		c.ackMu.Unlock()
		l := c.current()
		var err error
		if l != nil {
			err = c.writeFrames(l, acks...)
		}
		c.writeMu.Unlock()
		if err != nil {
			c.dropLink(l, err)
			return
		}
	}
}

func (c *channel) writeFrame(frame []byte) {
	l := c.current()
	if l == nil {
		return // sent again when the next link attaches
	}
	c.writeMu.Lock()
	err := c.writeFrames(l, frame)
	c.unlockWrite()
	if err != nil {
		c.dropLink(l, err)
	}
}

// send sends payload as stream messages of at most chunkSize bytes, waiting
// for window space. A message is kept until acknowledged, so one that a
// dropped link lost is sent again on the next.
func (c *channel) send(pt PayloadType, payload []byte) error {
	for first := true; first || len(payload) > 0; first = false {
		n := min(len(payload), chunkSize)
		if err := c.sendOne(pt, payload[:n]); err != nil {
			return err
		}
		payload = payload[n:]
	}
	return nil
}

func (c *channel) sendOne(pt PayloadType, payload []byte) error {
	c.mu.Lock()
	for len(c.unacked)+c.reserved >= window && c.closeErr == nil {
		c.space.Wait()
	}
	if c.closeErr != nil {
		err := c.closeErr
		c.mu.Unlock()
		return err
	}
	c.reserved++
	c.mu.Unlock()

	// Sequence numbers are taken under writeMu so that messages leave in
	// order; window space is taken before it, so that a sender waiting for
	// acknowledgements never holds up the acknowledgements this end owes.
	c.writeMu.Lock()
	c.mu.Lock()
	c.reserved--
	if c.closeErr != nil {
		err := c.closeErr
		c.mu.Unlock()
		c.unlockWrite()
		return err
	}
	seq := c.nextSeq
	c.nextSeq++
	var flags uint64
	if seq == 0 && c.sendType == OutputStreamData {
		flags = FlagSYN // as the agent marks the start of its stream
	}
	m := Message{Type: c.sendType, CreatedDate: c.now(), Sequence: seq, Flags: flags, ID: NewMessageID(), PayloadType: pt, Payload: payload}
	buf := frames.Get().(*[]byte)
	frame, err := m.Encode((*buf)[:0])
	if err != nil {
		c.mu.Unlock()
		c.unlockWrite()
		return err
	}
	o := &outgoing{frame: frame, sent: c.now()}
	o.retain()
	c.unacked[seq] = o
	c.mu.Unlock()
	l := c.current()
	if l != nil {
		err = c.writeFrames(l, frame)
	}
	c.written([]*outgoing{o})
	c.unlockWrite()
	if l != nil && err != nil {
		c.dropLink(l, err)
	}
	return nil
}

// acked records an acknowledgement. Round-trip samples come only from
// messages sent once (Karn's rule): an acknowledgement of a message sent
// twice cannot say which copy it answers.
func (c *channel) acked(seq int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.unacked[seq]
	if o == nil {
		return
	}
	if o.resends == 0 {
		c.sampleRTT(c.now().Sub(o.sent))
	}
	delete(c.unacked, seq)
	o.acked = true
	o.recycle()
	for c.base < c.nextSeq && c.unacked[c.base] == nil {
		c.base++
	}
	c.space.Signal()
}

// sampleRTT updates the retransmission timeout as TCP does (RFC 6298), with
// the reference implementations' constants.
func (c *channel) sampleRTT(r time.Duration) {
	if c.srtt == 0 {
		c.srtt, c.rttvar = r, r/2
	} else {
		d := c.srtt - r
		if d < 0 {
			d = -d
		}
		c.rttvar = (3*c.rttvar + d) / 4
		c.srtt = (7*c.srtt + r) / 8
	}
	c.rto = min(max(c.srtt+max(granularity, 4*c.rttvar), minRTO), maxRTO)
}

// retransmit sends unacknowledged messages again once they are older than
// the retransmission timeout, backing off for each resend of the same one.
func (c *channel) retransmit() {
	tick := time.NewTicker(minRTO / 2)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		if c.current() == nil {
			continue
		}
		var resend []*outgoing
		var dead bool
		c.mu.Lock()
		now := c.now()
		for seq := c.base; seq < c.nextSeq && len(resend) < resendBurst; seq++ {
			o := c.unacked[seq]
			if o == nil {
				continue
			}
			backoff := min(c.rto<<min(o.resends, 4), maxRTO)
			if now.Sub(o.sent) < backoff {
				continue
			}
			if o.resends >= maxResends {
				dead = true
				break
			}
			o.resends++
			o.sent = now
			o.retain()
			resend = append(resend, o)
		}
		c.mu.Unlock()
		if dead {
			c.written(resend)
			c.close(ErrUnacknowledged)
			return
		}
		for _, o := range resend {
			c.writeFrame(o.frame)
		}
		c.written(resend)
	}
}

// keepAlive pings the current link every interval until the channel
// closes.
func (c *channel) keepAlive(interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		l, ok := c.current().(pinger)
		if !ok {
			continue
		}
		if err := l.WriteControl(websocket.PingMessage, []byte("keepalive"), time.Now().Add(10*time.Second)); err != nil {
			c.dropLink(l.(link), fmt.Errorf("keep-alive ping: %w", err))
		}
	}
}

type pinger interface {
	WriteControl(messageType int, data []byte, deadline time.Time) error
}

// readLoop reads frames from l until it fails. A frame that fails to decode
// (cut, padded, bad digest) is dropped unacknowledged, so an honest sender
// sends it again; a link that keeps sending such frames is dropped.
func (c *channel) readLoop(l link) {
	read := l.ReadMessage
	if nr, ok := l.(nextReader); ok {
		// Reading each message into one reused buffer saves the allocation
		// and zeroing ReadMessage does per message; receive copies what it
		// keeps.
		var buf []byte
		read = func() (int, []byte, error) {
			typ, r, err := nr.NextReader()
			if err != nil {
				return 0, nil, err
			}
			buf, err = readAll(r, buf[:0])
			return typ, buf, err
		}
	}
	for {
		typ, b, err := read()
		if err != nil {
			c.dropLink(l, err)
			return
		}
		if typ != websocket.BinaryMessage {
			continue
		}
		m, err := Decode(b)
		if err != nil {
			c.rmu.Lock()
			c.badFrames++
			bad := c.badFrames
			c.rmu.Unlock()
			if bad > maxBadFrames {
				c.dropLink(l, fmt.Errorf("too many malformed frames, last: %w", err))
				return
			}
			continue
		}
		c.handle(m)
	}
}

const maxBadFrames = 64

type nextReader interface {
	NextReader() (messageType int, r io.Reader, err error)
}

// readAll appends r's bytes to buf, growing it as needed.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	if cap(buf) == 0 {
		buf = make([]byte, 0, 64<<10)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func (c *channel) handle(m Message) {
	switch m.Type {
	case c.recvType:
		c.receive(m)
	case Acknowledge:
		if seq, ok := ackedSequence(m.Payload, c.sendType); ok {
			c.acked(seq)
		}
	case ChannelClosed:
		var cc channelClosed
		json.Unmarshal(m.Payload, &cc)
		c.close(&ClosedError{SessionID: cc.SessionID, Output: cc.Output})
	}
	// start_publication and pause_publication come from the service, not
	// the other end; like the plugin, this end keeps sending either way and
	// relies on retransmission.
}

// receive queues an in-order message for reading, or holds one that
// arrived early or finds the queue full. Every message held is kept: while
// the buffer is below oooCapacity it is acknowledged at once, beyond that
// its acknowledgement waits until the reader takes it in. The sender then
// runs out of window and waits, instead of losing messages and stalling a
// whole retransmission timeout to send them again.
func (c *channel) receive(m Message) {
	c.rmu.Lock()
	switch {
	case m.Sequence < c.expected:
		// A copy of something already taken: the first acknowledgement was
		// lost or late. Acknowledge again; never deliver twice.
		c.rmu.Unlock()
		c.ack(m)
		return
	case m.Sequence == c.expected && (c.queued == 0 || c.queued+len(m.Payload) <= queueBytes):
		c.push(m)
		c.drain()
	default:
		h, dup := c.ooo[m.Sequence]
		switch {
		case dup && !h.acked:
			// Still waiting for the reader: its acknowledgement comes then.
			c.rmu.Unlock()
			return
		case dup:
		case m.Sequence-c.expected > oooCapacity+window:
			c.rmu.Unlock()
			return // beyond any window an honest sender keeps: refused
		default:
			m.Payload = keepPayload(m.Payload)
			h = held{m: m, acked: len(c.ooo) < oooCapacity}
			c.ooo[m.Sequence] = h
			if !h.acked {
				c.rmu.Unlock()
				return
			}
		}
	}
	c.rmu.Unlock()
	c.ack(m)
}

// payloads recycles the buffers received payloads are kept in: readLoop
// reads every frame into one reused buffer, so each payload kept is a copy,
// and at tunnel speeds allocating (and zeroing) one per message costs a
// tenth of the CPU. stream.Read gives a buffer back once it has handed out
// every byte of it; payloads read any other way are left to the collector.
var payloads = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize); return &b }}

// keepPayload copies p into a buffer of its own, from the pool when p fits.
func keepPayload(p []byte) []byte {
	if len(p) > chunkSize {
		return append([]byte(nil), p...)
	}
	b := payloads.Get().(*[]byte)
	return append((*b)[:0], p...)
}

// releasePayload gives a payload's buffer back for reuse; its bytes must no
// longer be referenced anywhere.
func releasePayload(p []byte) {
	if cap(p) == chunkSize {
		p = p[:0]
		payloads.Put(&p)
	}
}

// push appends m (the expected message) to the queue; rmu is held.
func (c *channel) push(m Message) {
	m.Payload = keepPayload(m.Payload)
	c.queue = append(c.queue, m)
	c.queued += len(m.Payload)
	c.expected++
	c.ready.Signal()
}

// drain moves held messages that are now in order into the queue while it
// has room, queueing the acknowledgements they still owe; rmu is held, and
// the caller flushes the acknowledgements once it is released.
func (c *channel) drain() {
	for {
		h, ok := c.ooo[c.expected]
		if !ok || (c.queued > 0 && c.queued+len(h.m.Payload) > queueBytes) {
			return
		}
		delete(c.ooo, c.expected)
		if !h.acked {
			c.enqueueAck(h.m)
		}
		c.queue = append(c.queue, h.m)
		c.queued += len(h.m.Payload)
		c.expected++
		c.ready.Signal()
	}
}

// ack sends m's acknowledgement.
func (c *channel) ack(m Message) {
	c.enqueueAck(m)
	if !c.ackAtIdle.Load() {
		c.flushAcks()
	}
}

// enqueueAck queues m's acknowledgement without writing it; it may be
// called with rmu held.
func (c *channel) enqueueAck(m Message) {
	var buf [160]byte
	content := ackContent{MessageType: m.Type, MessageID: m.ID.String(), SequenceNumber: m.Sequence, IsSequentialMessage: true}.appendJSON(buf[:0])
	a := Message{Type: Acknowledge, CreatedDate: c.now(), Flags: FlagSYN | FlagFIN, ID: NewMessageID(), Payload: content}
	frame, err := a.Encode(make([]byte, 0, HeaderSize+len(content)))
	if err != nil {
		return
	}
	c.ackMu.Lock()
	if len(c.acks) < maxQueuedAcks {
		c.acks = append(c.acks, frame)
	}
	c.ackMu.Unlock()
}

// recv returns the next message in sequence, waiting for it.
func (c *channel) recv() (Message, error) {
	c.rmu.Lock()
	for len(c.queue) == 0 {
		if err := c.err(); err != nil {
			c.rmu.Unlock()
			return Message{}, err
		}
		c.ready.Wait()
	}
	m := c.pop()
	c.rmu.Unlock()
	c.flushAcks()
	return m, nil
}

// recvTimeout is recv with a time limit, for the handshake.
func (c *channel) recvTimeout(d time.Duration) (Message, error) {
	expired := false
	t := time.AfterFunc(d, func() {
		c.rmu.Lock()
		expired = true
		c.ready.Broadcast()
		c.rmu.Unlock()
	})
	defer t.Stop()
	c.rmu.Lock()
	for len(c.queue) == 0 {
		if err := c.err(); err != nil {
			c.rmu.Unlock()
			return Message{}, err
		}
		if expired {
			c.rmu.Unlock()
			return Message{}, errHandshakeTimeout
		}
		c.ready.Wait()
	}
	m := c.pop()
	c.rmu.Unlock()
	c.flushAcks()
	return m, nil
}

// pop takes the first queued message and lets buffered ones follow it;
// rmu is held and the queue is not empty.
func (c *channel) pop() Message {
	m := c.queue[0]
	c.queue[0] = Message{}
	c.queue = c.queue[1:]
	c.queued -= len(m.Payload)
	c.drain()
	return m
}

var errHandshakeTimeout = errors.New("ssmsession: the handshake timed out")

func (c *channel) err() error {
	select {
	case <-c.done:
		return c.closeErr
	default:
		return nil
	}
}

// close ends the channel with err (the first error wins) and wakes every
// waiter.
func (c *channel) close(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.closeErr = err
		c.mu.Unlock()
		close(c.done)
		c.space.Broadcast()
		c.rmu.Lock()
		c.ready.Broadcast()
		c.rmu.Unlock()
		if l := c.current(); l != nil {
			l.Close()
		}
	})
}

// end announces the end of the session to the other end (ChannelClosed,
// saying why in output) and then closes the channel with err. Nothing is
// sent when the channel has already closed: the other end announced the
// end, or the link is gone.
func (c *channel) end(sessionID, output string, err error) {
	if c.err() == nil {
		c.sendClosed(sessionID, output)
	}
	c.close(err)
}

// sendClosed tells the other end the session is over.
func (c *channel) sendClosed(sessionID, output string) {
	id := NewMessageID()
	content, _ := json.Marshal(channelClosed{
		MessageID: id.String(), CreatedDate: c.now().UTC().Format(time.RFC3339Nano),
		SessionID: sessionID, MessageType: ChannelClosed, SchemaVersion: 1, Output: output,
	})
	m := Message{Type: ChannelClosed, CreatedDate: c.now(), ID: id, Payload: content}
	if frame, err := m.Encode(nil); err == nil {
		c.writeFrame(frame)
	}
}

// flush waits until every message sent so far is acknowledged, the channel
// closes or d passes.
func (c *channel) flush(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		n := len(c.unacked)
		c.mu.Unlock()
		if n == 0 || c.err() != nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
