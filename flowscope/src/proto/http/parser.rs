//! The per-flow HTTP/1.x parser: feeds each side's bytes through head
//! parsing and body framing, and pairs requests with responses in order
//! (RFC 9112 §9.3: responses come in the order of their requests).

use std::collections::VecDeque;

use flowscope_core::{Anomaly, Emit, FlowSide, SessionEvent, SessionParser, Timestamp};

use super::body::{Body, Chunk, GapOutcome};
use super::head::{self, Coding, Head, LengthHeader, RequestHead, ResponseHead};
use super::message::{HttpConfig, HttpRequest, HttpResponse, HttpTransaction};

/// What the parser as a whole is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Parsing both sides.
    Active,
    /// The connection switched protocols (101, or 2xx to CONNECT): the
    /// rest of the flow is not HTTP and is ignored.
    Tunnel,
    /// Gave up on the flow.
    Poisoned,
    /// `on_close` ran.
    Closed,
}

/// Where one side's stream stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Expecting (or inside) a start line and header block.
    Head,
    /// Inside a message body.
    Body(Body),
    /// Responses only: a gap took a response head; skipping to the next
    /// line that starts with `HTTP/1.`.
    Resync,
    /// Requests only: what followed a CONNECT or Upgrade request was not
    /// HTTP (likely the tunnelled protocol sent before the answer). Held
    /// until the response says whether the protocol switched; the code is
    /// the anomaly to report if it did not.
    Tunnelled(&'static str),
    /// This side's bytes stopped making sense as HTTP (already reported):
    /// ignored from here on, while the other side is still parsed.
    Lost,
}

/// One side's stream state.
#[derive(Debug)]
struct Side {
    /// A head that arrived in pieces, at most `max_header_bytes`.
    buf: Vec<u8>,
    /// When the buffered head's first byte arrived.
    head_ts: Timestamp,
    phase: Phase,
}

impl Side {
    fn new() -> Self {
        Side {
            buf: Vec::new(),
            head_ts: Timestamp::ZERO,
            phase: Phase::Head,
        }
    }
}

/// What gathering a head from a side's bytes gave.
enum HeadStep<T> {
    /// A head, and how many bytes of the input it used.
    Done(T, usize),
    /// Everything was buffered; the head goes on.
    NeedMore,
    /// Not a head.
    Invalid(&'static str),
    /// The head is longer than the limit.
    TooLong,
}

/// Gathers a head from `data` (after what `side` buffered): parsed straight
/// from `data` when nothing is buffered, so a head within one segment is
/// never copied.
///
/// A complete head's bytes are appended to `keep`: the message is built
/// from them when it is emitted, so a packet that only starts a message
/// allocates nothing (`keep` is a buffer reused for the flow's life).
fn take_head<T>(
    side: &mut Side,
    data: &[u8],
    ts: Timestamp,
    limit: usize,
    keep: &mut Vec<u8>,
    mut parse: impl FnMut(&[u8], Timestamp) -> Head<T>,
) -> HeadStep<T> {
    if side.buf.is_empty() {
        side.head_ts = ts;
        return match parse(data, ts) {
            Head::Complete(h, n) => {
                keep_head(keep, data.get(..n).unwrap_or(data));
                HeadStep::Done(h, n)
            }
            Head::Invalid(code) => HeadStep::Invalid(code),
            Head::Partial if data.len() >= limit => HeadStep::TooLong,
            Head::Partial => {
                side.buf.extend_from_slice(data);
                HeadStep::NeedMore
            }
        };
    }
    let old = side.buf.len();
    let add = limit.saturating_sub(old).min(data.len());
    side.buf.extend_from_slice(data.get(..add).unwrap_or(&[]));
    match parse(&side.buf, side.head_ts) {
        Head::Complete(h, n) => {
            keep_head(keep, side.buf.get(..n).unwrap_or(&side.buf));
            side.buf.clear();
            // The buffered part alone was incomplete, so the head ends in `data`.
            HeadStep::Done(h, n.saturating_sub(old).min(data.len()))
        }
        Head::Invalid(code) => HeadStep::Invalid(code),
        Head::Partial if side.buf.len() >= limit => HeadStep::TooLong,
        Head::Partial => HeadStep::NeedMore,
    }
}

/// Appends a head's bytes to a buffer kept for the flow's life. Grown to
/// a power of two (at least 256 bytes), so that heads a few bytes longer
/// than the last ones (a longer URI) do not reallocate each time.
fn keep_head(keep: &mut Vec<u8>, head: &[u8]) {
    let need = keep.len().saturating_add(head.len());
    if need > keep.capacity() {
        let want = need.checked_next_power_of_two().unwrap_or(need).max(256);
        keep.reserve_exact(want - keep.len());
    }
    keep.extend_from_slice(head);
}

/// A request waiting for its response: where its head's bytes are kept,
/// and what was learnt beyond the head. The [`HttpRequest`] is built from
/// the bytes when the transaction is emitted.
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// Offset and length of the head in the buffer that keeps it.
    at: usize,
    len: usize,
    ts: Timestamp,
    content_length: Option<u64>,
    chunked: bool,
    body_len: u64,
    /// The method is CONNECT.
    connect: bool,
    /// The method is HEAD.
    head_method: bool,
    /// CONNECT, or an `Upgrade` header: the answer may switch protocols.
    tunnel_candidate: bool,
}

/// A final response whose body is still arriving; its head's bytes are in
/// `HttpParser::resp_head`, its request's in `HttpParser::open_req_head`.
#[derive(Debug)]
struct Open {
    request: Option<Pending>,
    ts: Timestamp,
    content_length: Option<u64>,
    body_len: u64,
    /// The connection switches protocols once this response is done.
    tunnel: bool,
}

/// HTTP/1.x parser for one flow: the initiator sends requests, the
/// responder responses. Emits one [`HttpTransaction`] per final response
/// (with the request it answers, in order) and one per request left
/// unanswered at the end.
///
/// Memory is bounded by [`HttpConfig`]: one header buffer per side, the
/// queue of pending requests, nothing per body byte. Never panics.
#[derive(Debug)]
pub struct HttpParser {
    cfg: HttpConfig,
    mode: Mode,
    req: Side,
    resp: Side,
    pending: VecDeque<Pending>,
    /// The heads of the `pending` requests, in order (each `Pending` says
    /// where); compacted as requests leave, cleared when none wait.
    req_heads: Vec<u8>,
    /// The head of the request the open response answers.
    open_req_head: Vec<u8>,
    /// The head of the open response.
    resp_head: Vec<u8>,
    /// The newest pending request is still receiving body bytes.
    req_body_open: bool,
    open: Option<Open>,
    /// 1xx statuses seen since the last final response.
    interim: Vec<u16>,
    /// The open response's 1xx statuses.
    open_interim: Vec<u16>,
}

impl Default for HttpParser {
    fn default() -> Self {
        HttpParser::new(HttpConfig::default())
    }
}

fn emit_anomaly(out: &mut Emit<'_, HttpTransaction>, side: Option<FlowSide>, code: &'static str) {
    out(SessionEvent::Anomaly {
        side,
        anomaly: Anomaly::new(code),
    });
}

/// Where the next response start (`HTTP/1.` at a line start) is in
/// `data`; its first byte counts as a line start.
fn find_status_line(data: &[u8]) -> Option<usize> {
    const START: &[u8] = b"HTTP/1.";
    let mut pos = 0usize;
    loop {
        let rest = data.get(pos..)?;
        if rest.starts_with(START) {
            return Some(pos);
        }
        pos += rest.iter().position(|&b| b == b'\n')? + 1;
    }
}

impl HttpParser {
    /// A parser with these limits.
    pub fn new(cfg: HttpConfig) -> Self {
        HttpParser {
            cfg,
            mode: Mode::Active,
            req: Side::new(),
            resp: Side::new(),
            pending: VecDeque::new(),
            req_heads: Vec::new(),
            open_req_head: Vec::new(),
            resp_head: Vec::new(),
            req_body_open: false,
            open: None,
            interim: Vec::new(),
            open_interim: Vec::new(),
        }
    }

    /// True once the flow switched to another protocol (101 Switching
    /// Protocols, or a 2xx answer to CONNECT): later bytes are ignored.
    pub fn is_tunnel(&self) -> bool {
        self.mode == Mode::Tunnel
    }

    /// Requests waiting for a response right now.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// Bytes held in the two header buffers (each at most
    /// [`HttpConfig::max_header_bytes`]).
    pub fn buffered_bytes(&self) -> usize {
        self.req.buf.len() + self.resp.buf.len()
    }

    /// The request `p`, built from its head's bytes in `heads`.
    fn build_request(&self, heads: &[u8], p: &Pending) -> HttpRequest {
        let bytes = heads.get(p.at..p.at.saturating_add(p.len)).unwrap_or(&[]);
        // The head parsed before (its anomalies were reported then), so it
        // parses again the same way.
        let mut req = match head::parse_request(bytes, p.ts, &self.cfg, true, &mut |_| {}) {
            Head::Complete(h, _) => h.req,
            _ => HttpRequest {
                ts: p.ts,
                ..HttpRequest::default()
            },
        };
        req.content_length = p.content_length;
        req.chunked = p.chunked;
        req.body_len = p.body_len;
        req
    }

    /// The open response, built from `resp_head`.
    fn build_response(&self, o: &Open) -> HttpResponse {
        let mut resp =
            match head::parse_response(&self.resp_head, o.ts, &self.cfg, true, &mut |_| {}) {
                Head::Complete(h, _) => h.resp,
                _ => HttpResponse {
                    ts: o.ts,
                    ..HttpResponse::default()
                },
            };
        resp.content_length = o.content_length;
        resp.body_len = o.body_len;
        // Allocates only when there were 1xx statuses.
        resp.interim = self.open_interim.clone();
        resp
    }

    /// The open response with its request, as a transaction.
    fn open_transaction(&self, o: &Open) -> HttpTransaction {
        HttpTransaction {
            request: o
                .request
                .as_ref()
                .map(|p| self.build_request(&self.open_req_head, p)),
            response: Some(self.build_response(o)),
        }
    }

    /// Takes the oldest waiting request out of the queue, built.
    fn pop_request(&mut self) -> Option<HttpRequest> {
        let p = self.pending.pop_front()?;
        let req = self.build_request(&self.req_heads, &p);
        self.drop_front_head(p.at.saturating_add(p.len));
        Some(req)
    }

    /// The first `end` bytes of `req_heads` are no longer needed: cleared
    /// when no request waits, else moved out (in place, no allocation) once
    /// they are more than half the buffer, so a client that pipelines
    /// without pause does not grow it without bound.
    fn drop_front_head(&mut self, end: usize) {
        if self.pending.is_empty() {
            self.req_heads.clear();
            return;
        }
        if end > self.req_heads.len() / 2 && end <= self.req_heads.len() {
            self.req_heads.drain(..end);
            for p in self.pending.iter_mut() {
                p.at = p.at.saturating_sub(end);
            }
        }
    }

    fn requests(&mut self, mut rest: &[u8], ts: Timestamp, out: &mut Emit<'_, HttpTransaction>) {
        let side = Some(FlowSide::Initiator);
        let limit = self.cfg.max_header_bytes;
        while !rest.is_empty() && self.mode == Mode::Active {
            match &mut self.req.phase {
                Phase::Tunnelled(_) | Phase::Resync | Phase::Lost => return,
                Phase::Body(body) => match body.feed(rest, limit) {
                    Ok(p) => {
                        if let Some(code) = p.anomaly {
                            emit_anomaly(out, side, code);
                        }
                        rest = rest.get(p.consumed..).unwrap_or(&[]);
                        if p.done {
                            self.req.phase = Phase::Head;
                        }
                        self.add_request_body(p.body, p.done);
                    }
                    Err(code) => return self.lose(FlowSide::Initiator, Some(code), out),
                },
                Phase::Head => {
                    let cfg = &self.cfg;
                    let at = self.req_heads.len();
                    let step = take_head(
                        &mut self.req,
                        rest,
                        ts,
                        limit,
                        &mut self.req_heads,
                        |buf, ts| {
                            head::parse_request(buf, ts, cfg, false, &mut |c| {
                                emit_anomaly(out, side, c)
                            })
                        },
                    );
                    match step {
                        HeadStep::Done(h, used) => {
                            rest = rest.get(used..).unwrap_or(&[]);
                            let len = self.req_heads.len().saturating_sub(at);
                            self.start_request(h, at, len, out);
                        }
                        HeadStep::NeedMore => return,
                        HeadStep::Invalid(code)
                            if self.pending.back().is_some_and(|p| p.tunnel_candidate) =>
                        {
                            self.req.buf.clear();
                            self.req.phase = Phase::Tunnelled(code);
                            return;
                        }
                        HeadStep::Invalid(code) => {
                            return self.lose(FlowSide::Initiator, Some(code), out)
                        }
                        HeadStep::TooLong => {
                            emit_anomaly(out, side, "http.header_too_long");
                            return self.poison(out);
                        }
                    }
                }
            }
        }
    }

    /// `side` sent something that is not HTTP: report it and ignore that
    /// side from now on. Responses still come out (with `request: None`
    /// once the requests seen are used up), requests still come out
    /// (unanswered); with both sides lost the flow is given up.
    fn lose(
        &mut self,
        side: FlowSide,
        code: Option<&'static str>,
        out: &mut Emit<'_, HttpTransaction>,
    ) {
        if let Some(code) = code {
            emit_anomaly(out, Some(side), code);
        }
        if side == FlowSide::Responder {
            // A response cut short by broken framing still comes out.
            if let Some(open) = self.open.take() {
                out(SessionEvent::Message(self.open_transaction(&open)));
            }
        }
        let (this, other) = match side {
            FlowSide::Initiator => (&mut self.req, &self.resp),
            FlowSide::Responder => (&mut self.resp, &self.req),
        };
        this.phase = Phase::Lost;
        this.buf = Vec::new();
        if side == FlowSide::Initiator {
            self.req_body_open = false;
        }
        if other.phase == Phase::Lost {
            self.poison(out);
        }
    }

    fn add_request_body(&mut self, n: u64, done: bool) {
        if self.req_body_open {
            if let Some(p) = self.pending.back_mut() {
                p.body_len = p.body_len.saturating_add(n);
            }
        }
        if done {
            self.req_body_open = false;
        }
    }

    fn start_request(
        &mut self,
        h: RequestHead,
        at: usize,
        len: usize,
        out: &mut Emit<'_, HttpTransaction>,
    ) {
        let side = Some(FlowSide::Initiator);
        let RequestHead {
            req: head_req,
            framing,
            connect,
            head_method,
        } = h;
        let mut req = Pending {
            at,
            len,
            ts: head_req.ts,
            content_length: None,
            chunked: false,
            body_len: 0,
            connect,
            head_method,
            tunnel_candidate: framing.upgrade || connect,
        };
        if let LengthHeader::Value(n) = framing.length {
            req.content_length = Some(n);
        }
        // RFC 9112 §6.3: chunked wins over Content-Length; a request with
        // no length and no chunked has no body.
        let body = match (framing.coding, framing.length) {
            (Coding::Chunked, _) => {
                req.chunked = true;
                Some(Body::Chunked(Chunk::START))
            }
            (Coding::Other, _) => {
                // The server must answer 400 and close (§6.3 rule 4): there
                // is no body framing to follow.
                emit_anomaly(out, side, "http.invalid_transfer_encoding");
                None
            }
            (Coding::Absent, LengthHeader::Value(0) | LengthHeader::Absent) => None,
            (Coding::Absent, LengthHeader::Value(n)) => Some(Body::Length { remaining: n }),
            (Coding::Absent, LengthHeader::Invalid) => {
                // Already reported; the end of this request cannot be found.
                self.push_pending(req, out);
                return self.lose(FlowSide::Initiator, None, out);
            }
        };
        self.push_pending(req, out);
        if let Some(b) = body {
            self.req.phase = Phase::Body(b);
            self.req_body_open = true;
        }
    }

    fn push_pending(&mut self, req: Pending, out: &mut Emit<'_, HttpTransaction>) {
        // Pushed first, so that the oldest request's head is dropped from
        // `req_heads` with the new one still listed (and moved with it).
        self.pending.push_back(req);
        if self.pending.len() > self.cfg.max_pending_requests.max(1) {
            emit_anomaly(out, Some(FlowSide::Initiator), "http.too_many_pending");
            if let Some(old) = self.pop_request() {
                out(SessionEvent::Message(HttpTransaction {
                    request: Some(old),
                    response: None,
                }));
            }
        }
    }

    fn responses(&mut self, mut rest: &[u8], ts: Timestamp, out: &mut Emit<'_, HttpTransaction>) {
        let side = Some(FlowSide::Responder);
        let limit = self.cfg.max_header_bytes;
        while !rest.is_empty() && self.mode == Mode::Active {
            match &mut self.resp.phase {
                Phase::Tunnelled(_) | Phase::Lost => return,
                Phase::Resync => match find_status_line(rest) {
                    Some(at) => {
                        rest = rest.get(at..).unwrap_or(&[]);
                        self.resp.phase = Phase::Head;
                    }
                    None => return,
                },
                Phase::Body(body) => match body.feed(rest, limit) {
                    Ok(p) => {
                        if let Some(code) = p.anomaly {
                            emit_anomaly(out, side, code);
                        }
                        rest = rest.get(p.consumed..).unwrap_or(&[]);
                        self.add_response_body(p.body);
                        if p.done {
                            self.finish_response(out);
                        }
                    }
                    Err(code) => return self.lose(FlowSide::Responder, Some(code), out),
                },
                Phase::Head => {
                    let cfg = &self.cfg;
                    // No response is open while a head is parsed.
                    self.resp_head.clear();
                    let step = take_head(
                        &mut self.resp,
                        rest,
                        ts,
                        limit,
                        &mut self.resp_head,
                        |buf, ts| {
                            head::parse_response(buf, ts, cfg, false, &mut |c| {
                                emit_anomaly(out, side, c)
                            })
                        },
                    );
                    match step {
                        HeadStep::Done(h, used) => {
                            rest = rest.get(used..).unwrap_or(&[]);
                            self.start_response(h, out);
                        }
                        HeadStep::NeedMore => return,
                        HeadStep::Invalid(code) => {
                            // Not a status line: most likely the middle of
                            // a response whose head was not captured.
                            emit_anomaly(out, side, code);
                            self.resync(true, out);
                            // Look for the next status line after this line.
                            let next_line = rest.iter().position(|&b| b == b'\n');
                            rest = next_line.and_then(|i| rest.get(i + 1..)).unwrap_or(&[]);
                        }
                        HeadStep::TooLong => {
                            emit_anomaly(out, side, "http.header_too_long");
                            return self.poison(out);
                        }
                    }
                }
            }
        }
    }

    fn start_response(&mut self, h: ResponseHead, out: &mut Emit<'_, HttpTransaction>) {
        let ResponseHead { resp, framing } = h;
        let status = resp.status;
        if (100..200).contains(&status) && status != 101 {
            // Interim: the final response to the same request follows
            // (RFC 9110 §15.2).
            if self.interim.len() < self.cfg.max_interim {
                self.interim.push(status);
            }
            return;
        }
        let content_length = match framing.length {
            LengthHeader::Value(n) => Some(n),
            _ => None,
        };
        // The answered request's head moves next to the response's, so
        // that later requests can reuse `req_heads` while this one's body
        // arrives.
        let request = self.pending.pop_front().map(|mut p| {
            self.open_req_head.clear();
            keep_head(
                &mut self.open_req_head,
                self.req_heads
                    .get(p.at..p.at.saturating_add(p.len))
                    .unwrap_or(&[]),
            );
            let end = p.at.saturating_add(p.len);
            p.at = 0;
            self.drop_front_head(end);
            p
        });
        if self.pending.is_empty() {
            // Its body, if still arriving, is no longer counted.
            self.req_body_open = false;
        }
        if request.is_none() {
            emit_anomaly(out, Some(FlowSide::Responder), "http.unsolicited_response");
        }
        self.open_interim.clear();
        self.open_interim.append(&mut self.interim);
        let connect = request.as_ref().is_some_and(|p| p.connect);
        let head_method = request.as_ref().is_some_and(|p| p.head_method);
        let tunnel = status == 101 || (connect && (200..300).contains(&status));
        // RFC 9112 §6.3 rules 1–2 (no body), then 4–8.
        let no_body = tunnel || head_method || status < 200 || status == 204 || status == 304;
        let body = if no_body {
            None
        } else {
            match (framing.coding, framing.length) {
                (Coding::Chunked, _) => Some(Body::Chunked(Chunk::START)),
                (Coding::Absent, LengthHeader::Value(0)) => None,
                (Coding::Absent, LengthHeader::Value(n)) => Some(Body::Length { remaining: n }),
                (Coding::Other, _)
                | (Coding::Absent, LengthHeader::Invalid | LengthHeader::Absent) => {
                    Some(Body::UntilClose)
                }
            }
        };
        self.open = Some(Open {
            request,
            ts: resp.ts,
            content_length,
            body_len: 0,
            tunnel,
        });
        match body {
            Some(b) => self.resp.phase = Phase::Body(b),
            None => self.finish_response(out),
        }
    }

    fn finish_response(&mut self, out: &mut Emit<'_, HttpTransaction>) {
        self.resp.phase = Phase::Head;
        let Some(open) = self.open.take() else { return };
        let candidate = open.request.as_ref().is_some_and(|p| p.tunnel_candidate);
        out(SessionEvent::Message(self.open_transaction(&open)));
        if open.tunnel {
            self.flush_pending(out);
            self.mode = Mode::Tunnel;
            self.release();
        } else if let (true, Phase::Tunnelled(code)) = (candidate, self.req.phase) {
            // The protocol did not switch after all, so what the client
            // sent was not HTTP.
            self.lose(FlowSide::Initiator, Some(code), out);
        }
    }

    /// Emits every transaction in progress: the open response with its
    /// request, then each request still waiting, unanswered.
    fn flush_pending(&mut self, out: &mut Emit<'_, HttpTransaction>) {
        if let Some(open) = self.open.take() {
            out(SessionEvent::Message(self.open_transaction(&open)));
        }
        while let Some(req) = self.pop_request() {
            out(SessionEvent::Message(HttpTransaction {
                request: Some(req),
                response: None,
            }));
        }
        self.req_body_open = false;
    }

    fn poison(&mut self, out: &mut Emit<'_, HttpTransaction>) {
        self.flush_pending(out);
        self.mode = Mode::Poisoned;
        self.release();
    }

    fn release(&mut self) {
        self.req.buf = Vec::new();
        self.resp.buf = Vec::new();
        self.interim = Vec::new();
        self.req_heads = Vec::new();
        self.open_req_head = Vec::new();
        self.resp_head = Vec::new();
        self.open_interim = Vec::new();
    }

    fn gap(&mut self, side: FlowSide, len: u64, out: &mut Emit<'_, HttpTransaction>) {
        let phase = match side {
            FlowSide::Initiator => &mut self.req.phase,
            FlowSide::Responder => &mut self.resp.phase,
        };
        let outcome = match phase {
            Phase::Tunnelled(_) | Phase::Resync | Phase::Lost => return,
            Phase::Body(body) => body.gap(len),
            Phase::Head => {
                emit_anomaly(out, Some(side), "http.gap_in_headers");
                return match side {
                    FlowSide::Initiator => self.poison(out),
                    FlowSide::Responder => self.resync(true, out),
                };
            }
        };
        match (side, outcome) {
            (FlowSide::Initiator, GapOutcome::Absorbed { done }) => {
                if done {
                    self.req.phase = Phase::Head;
                }
                self.add_request_body(len, done);
            }
            (FlowSide::Responder, GapOutcome::Absorbed { done }) => {
                self.add_response_body(len);
                if done {
                    self.finish_response(out);
                }
            }
            // Requests lost with the gap would pair every later response
            // with the wrong request.
            (FlowSide::Initiator, _) => {
                emit_anomaly(out, Some(side), "http.gap_in_framing");
                self.poison(out);
            }
            (FlowSide::Responder, GapOutcome::Overran { body }) => {
                // The response ended inside the gap; the next one started
                // there, so the head lost is the next waiting request's.
                self.add_response_body(body);
                self.finish_response(out);
                emit_anomaly(out, Some(side), "http.gap_in_headers");
                self.resync(true, out);
            }
            (FlowSide::Responder, GapOutcome::Lost) => {
                // Chunk framing lost: the response ends here as far as we
                // can tell; the gap most likely stayed inside its body.
                emit_anomaly(out, Some(side), "http.gap_in_framing");
                self.finish_response(out);
                self.resync(false, out);
            }
        }
    }

    fn add_response_body(&mut self, n: u64) {
        if let Some(o) = self.open.as_mut() {
            o.body_len = o.body_len.saturating_add(n);
        }
    }

    /// The responder's stream lost a response head (a gap, or bytes that
    /// are not HTTP): skip to the next line that starts with `HTTP/1.`.
    /// When `head_lost`, the lost head answered the oldest waiting request,
    /// which comes out unanswered. That keeps pairing right when at most
    /// one request waits; with more, how many answers were lost is unknown
    /// and pairing would go wrong, so the responder side is given up.
    fn resync(&mut self, head_lost: bool, out: &mut Emit<'_, HttpTransaction>) {
        if self.mode != Mode::Active {
            return;
        }
        if head_lost && self.pending.len() > 1 {
            return self.lose(FlowSide::Responder, None, out);
        }
        self.resp.buf.clear();
        self.resp.phase = Phase::Resync;
        self.interim.clear();
        if head_lost {
            if let Some(req) = self.pop_request() {
                out(SessionEvent::Message(HttpTransaction {
                    request: Some(req),
                    response: None,
                }));
            }
            if self.pending.is_empty() {
                self.req_body_open = false;
            }
        }
    }
}

impl SessionParser for HttpParser {
    type Message = HttpTransaction;

    fn on_data(
        &mut self,
        side: FlowSide,
        data: &[u8],
        ts: Timestamp,
        out: &mut Emit<'_, HttpTransaction>,
    ) {
        if self.mode != Mode::Active {
            return;
        }
        match side {
            FlowSide::Initiator => self.requests(data, ts, out),
            FlowSide::Responder => self.responses(data, ts, out),
        }
    }

    /// Inside a body the missing bytes are counted as body and framing goes
    /// on; a gap that takes framing bytes (a head, a chunk-size line) ends
    /// the parse (`http.gap_in_headers` / `http.gap_in_framing`, poisoned),
    /// except a lost response head while at most one request waits: that
    /// request is emitted unanswered and parsing resumes at the next line
    /// starting with `HTTP/1.`.
    fn on_gap(
        &mut self,
        side: FlowSide,
        len: u64,
        _ts: Timestamp,
        out: &mut Emit<'_, HttpTransaction>,
    ) {
        if self.mode == Mode::Active && len > 0 {
            self.gap(side, len, out);
        }
    }

    /// Ends a read-until-close response, reports truncated messages, emits
    /// every transaction still pending (the driver then reports
    /// [`SessionEvent::Closed`]).
    fn on_close(&mut self, _ts: Timestamp, out: &mut Emit<'_, HttpTransaction>) {
        if self.mode == Mode::Closed {
            return;
        }
        if self.mode == Mode::Active {
            match self.resp.phase {
                Phase::Body(Body::UntilClose) => {}
                Phase::Body(_) => {
                    emit_anomaly(out, Some(FlowSide::Responder), "http.truncated_body")
                }
                _ => {}
            }
            if matches!(self.req.phase, Phase::Body(_)) {
                emit_anomaly(out, Some(FlowSide::Initiator), "http.truncated_body");
            }
            for (side, s) in [
                (FlowSide::Initiator, &self.req),
                (FlowSide::Responder, &self.resp),
            ] {
                if s.buf.iter().any(|b| !b.is_ascii_whitespace()) {
                    emit_anomaly(out, Some(side), "http.truncated_header");
                }
            }
            self.flush_pending(out);
        }
        self.mode = Mode::Closed;
        self.release();
    }

    fn is_poisoned(&self) -> bool {
        self.mode == Mode::Poisoned
    }

    /// Capacities of both head buffers, the kept heads, the pending
    /// queue and the 1xx lists.
    fn memory_used(&self) -> usize {
        let pending = self.pending.capacity() * std::mem::size_of::<Pending>();
        let interim =
            (self.interim.capacity() + self.open_interim.capacity()) * std::mem::size_of::<u16>();
        [
            self.req.buf.capacity(),
            self.resp.buf.capacity(),
            self.req_heads.capacity(),
            self.open_req_head.capacity(),
            self.resp_head.capacity(),
            pending,
            interim,
        ]
        .into_iter()
        .fold(0, usize::saturating_add)
    }
}
