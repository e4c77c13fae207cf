//! The YAML events of a configuration file, read one at a time from its text: block mappings and
//! sequences indented with spaces, flow mappings and sequences (`{id: a, team: b}`, `[x, y]`,
//! which may span lines), plain, single-quoted and double-quoted scalars on one line, comments
//! and blank lines. That is what configuration files are written in, and it needs no tree and
//! no list of events: the typed parse pulls each event as it fills the file shapes.
//!
//! Anything else YAML allows (anchors and aliases, tags, block scalars `|` `>`, multi-line
//! scalars, explicit keys, directives and document markers, tabs, carriage returns, a scalar
//! where the scanner is unsure that libyaml would read it the same way) is [`Declined`]: the
//! caller then parses the file with serde_yaml, as before. Declining is always safe; reading a
//! text differently from libyaml never is, so every rule here errs towards declining.

use std::borrow::Cow;

/// The text uses YAML the scanner does not read (or is not valid YAML at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declined;

/// One scalar: its text (quotes and escapes resolved) and whether it was plain (unquoted), which
/// decides whether `10`, `true` or `~` are a number, a boolean or null rather than text.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar<'a> {
    pub text: Cow<'a, str>,
    pub plain: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    MapStart,
    MapEnd,
    SeqStart,
    SeqEnd,
    Scalar(Scalar<'a>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Flow {
    /// Just after the opening bracket: an entry or the closing bracket.
    First,
    /// After a comma: an entry.
    Entry,
    /// After a mapping key and its colon: the value.
    Value,
    /// After an entry: a comma or the closing bracket.
    Next,
}

#[derive(Debug)]
enum Frame {
    /// A block mapping whose keys start at column `indent`. `at_key`: the position is at its
    /// next key already (its first key, on the line of a `- ` or found by the parent).
    BlockMap {
        indent: usize,
        value_next: bool,
        at_key: bool,
    },
    BlockSeq {
        indent: usize,
    },
    /// `inside`: the indentation of the block around it; a continuation line must be deeper.
    FlowMap {
        state: Flow,
        inside: usize,
    },
    FlowSeq {
        state: Flow,
        inside: usize,
    },
}

/// Deeper than any configuration goes; serde_yaml refuses past 128.
const MAX_DEPTH: usize = 64;
/// libyaml refuses an implicit key longer than 1024 characters.
const MAX_KEY: usize = 1000;

pub struct Scanner<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
    /// `Some(indent)` when `pos` is at the first character of a content line.
    fresh: Option<usize>,
    stack: Vec<Frame>,
    started: bool,
    peeked: Option<Event<'a>>,
}

impl<'a> Scanner<'a> {
    /// A scanner over `text`, or `Declined` when it holds a character the scanner leaves to
    /// libyaml (tabs, carriage returns, a byte-order mark, control and non-printable characters,
    /// and the line breaks YAML 1.1 knows beyond `\n`).
    pub fn new(text: &'a str) -> Result<Self, Declined> {
        let plain_ascii = |b: u8| b == b'\n' || (0x20..0x7f).contains(&b);
        if !text.bytes().all(plain_ascii) {
            let printable = |c: char| match c {
                '\n' | ' '..='~' => true,
                '\u{a0}'..='\u{d7ff}' => !matches!(c, '\u{2028}' | '\u{2029}'),
                '\u{e000}'..='\u{fffd}' => c != '\u{feff}',
                '\u{10000}'..='\u{10ffff}' => true,
                _ => false,
            };
            if !text.chars().all(printable) {
                return Err(Declined);
            }
        }
        Ok(Scanner {
            s: text,
            b: text.as_bytes(),
            pos: 0,
            fresh: None,
            stack: Vec::new(),
            started: false,
            peeked: None,
        })
    }

    /// The next event.
    pub fn event(&mut self) -> Result<Event<'a>, Declined> {
        match self.peeked.take() {
            Some(e) => Ok(e),
            None => self.produce(),
        }
    }

    /// The next event, left to be returned by [`Scanner::event`].
    pub fn peek(&mut self) -> Result<&Event<'a>, Declined> {
        if self.peeked.is_none() {
            self.peeked = Some(self.produce()?);
        }
        self.peeked.as_ref().ok_or(Declined)
    }

    /// After the root mapping's end: nothing but blank lines and comments may follow.
    pub fn finish(&mut self) -> Result<(), Declined> {
        if self.peeked.is_some() || !self.stack.is_empty() || !self.started {
            return Err(Declined);
        }
        match self.line()? {
            None => Ok(()),
            Some(_) => Err(Declined),
        }
    }

    fn at(&self, i: usize) -> u8 {
        self.b.get(i).copied().unwrap_or(0)
    }

    fn produce(&mut self) -> Result<Event<'a>, Declined> {
        if self.stack.len() > MAX_DEPTH {
            return Err(Declined);
        }
        let Some(top) = self.stack.last_mut() else {
            if self.started {
                return Err(Declined);
            }
            self.started = true;
            let indent = self.line()?.ok_or(Declined)?;
            return Ok(self.push_map(indent));
        };
        match *top {
            Frame::BlockMap {
                indent,
                value_next: false,
                at_key,
            } => {
                if !at_key {
                    match self.line()? {
                        Some(i) if i == indent => {}
                        Some(i) if i > indent => return Err(Declined),
                        _ => return Ok(self.pop(Event::MapEnd)),
                    }
                }
                let key = self.key()?;
                if let Some(Frame::BlockMap {
                    value_next, at_key, ..
                }) = self.stack.last_mut()
                {
                    *value_next = true;
                    *at_key = false;
                }
                Ok(Event::Scalar(key))
            }
            Frame::BlockMap { indent, .. } => {
                if let Some(Frame::BlockMap { value_next, .. }) = self.stack.last_mut() {
                    *value_next = false;
                }
                self.block_value(indent, true)
            }
            Frame::BlockSeq { indent } => {
                match self.line()? {
                    Some(i) if i == indent && self.entry_dash(self.pos) => {}
                    Some(i) if i > indent => return Err(Declined),
                    _ => return Ok(self.pop(Event::SeqEnd)),
                }
                self.pos += 1;
                self.fresh = None;
                self.block_value(indent, false)
            }
            Frame::FlowMap { state, inside } => self.flow(state, inside, true),
            Frame::FlowSeq { state, inside } => self.flow(state, inside, false),
        }
    }

    fn pop(&mut self, e: Event<'a>) -> Event<'a> {
        self.stack.pop();
        e
    }

    /// A block mapping whose first key is at the position, at column `indent`.
    fn push_map(&mut self, indent: usize) -> Event<'a> {
        self.stack.push(Frame::BlockMap {
            indent,
            value_next: false,
            at_key: true,
        });
        Event::MapStart
    }

    /// Whether `i` holds a block sequence's `-` (followed by a space or the line's end).
    fn entry_dash(&self, i: usize) -> bool {
        self.at(i) == b'-' && matches!(self.at(i + 1), b' ' | b'\n' | 0)
    }

    /// A node after a mapping key's `:` (`in_map`) or a sequence's `-`, in a block at `indent`:
    /// on the same line (a scalar, a flow collection, for a sequence entry a mapping starting
    /// there) or on the lines below (a deeper mapping or sequence; a sequence may also sit at
    /// the mapping's own indentation). Nothing there is null.
    fn block_value(&mut self, indent: usize, in_map: bool) -> Result<Event<'a>, Declined> {
        self.spaces();
        let c = self.at(self.pos);
        if matches!(c, 0 | b'\n' | b'#') {
            return Ok(match self.line()? {
                Some(i) if i > indent || (in_map && i == indent && self.entry_dash(self.pos)) => {
                    if self.entry_dash(self.pos) {
                        self.stack.push(Frame::BlockSeq { indent: i });
                        Event::SeqStart
                    } else {
                        self.push_map(i)
                    }
                }
                _ => Event::Scalar(Scalar {
                    text: Cow::Borrowed(""),
                    plain: true,
                }),
            });
        }
        let start = self.pos;
        match c {
            b'{' | b'[' => {
                self.pos += 1;
                let state = Flow::First;
                self.stack.push(if c == b'{' {
                    Frame::FlowMap {
                        state,
                        inside: indent,
                    }
                } else {
                    Frame::FlowSeq {
                        state,
                        inside: indent,
                    }
                });
                Ok(if c == b'{' {
                    Event::MapStart
                } else {
                    Event::SeqStart
                })
            }
            _ => {
                let scalar = self.scalar(false)?;
                let key_follows = self.colon_follows();
                match (key_follows, in_map) {
                    (false, _) => Ok(Event::Scalar(scalar)),
                    // `- id: a`: a mapping starts on the entry's line.
                    (true, false) => {
                        self.pos = start;
                        Ok(self.push_map(self.column(start)))
                    }
                    (true, true) => Err(Declined),
                }
            }
        }
    }

    /// A block mapping key at the position: a scalar on one line, then `:` and a blank.
    fn key(&mut self) -> Result<Scalar<'a>, Declined> {
        let start = self.pos;
        self.fresh = None;
        let key = self.scalar(false)?;
        if !self.colon_follows() || self.pos - start > MAX_KEY {
            return Err(Declined);
        }
        self.spaces();
        self.pos += 1;
        Ok(key)
    }

    /// Whether `:` and a blank follow (after spaces) on this line; the position stays.
    fn colon_follows(&self) -> bool {
        let mut i = self.pos;
        while self.at(i) == b' ' {
            i += 1;
        }
        self.at(i) == b':' && matches!(self.at(i + 1), b' ' | b'\n' | 0)
    }

    fn spaces(&mut self) {
        while self.at(self.pos) == b' ' {
            self.pos += 1;
        }
    }

    fn column(&self, i: usize) -> usize {
        i - self.b[..i]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |n| n + 1)
    }

    /// The next content line: the rest of the current line must be blank or a comment, then
    /// blank and comment lines are skipped. Returns its indentation, the position at its first
    /// character; `None` at the end of the text.
    fn line(&mut self) -> Result<Option<usize>, Declined> {
        if let Some(i) = self.fresh {
            return Ok(Some(i));
        }
        if self.pos > 0 && self.at(self.pos - 1) != b'\n' {
            self.spaces();
            match self.at(self.pos) {
                0 => return Ok(None),
                b'\n' => {}
                b'#' if self.at(self.pos - 1) == b' ' => self.skip_to_eol(),
                _ => return Err(Declined),
            }
            self.pos += 1;
        }
        loop {
            let start = self.pos;
            self.spaces();
            match self.at(self.pos) {
                0 if self.pos >= self.b.len() => return Ok(None),
                b'\n' => self.pos += 1,
                b'#' => {
                    self.skip_to_eol();
                    self.pos += 1;
                }
                _ => {
                    let indent = self.pos - start;
                    if indent == 0 && self.marker(start) {
                        return Err(Declined);
                    }
                    self.fresh = Some(indent);
                    return Ok(Some(indent));
                }
            }
        }
    }

    fn skip_to_eol(&mut self) {
        self.pos = self.b[self.pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.b.len(), |n| self.pos + n);
    }

    /// A document marker (`---`, `...`) or a directive (`%`) at the start of a line.
    fn marker(&self, i: usize) -> bool {
        let three = |c: u8| (0..3).all(|k| self.at(i + k) == c);
        self.at(i) == b'%'
            || ((three(b'-') || three(b'.')) && matches!(self.at(i + 3), b' ' | b'\n' | 0))
    }

    /// Spaces, line breaks and comments inside a flow collection; continuation lines must be
    /// deeper than the block around it (`inside`).
    fn flow_space(&mut self, inside: usize) -> Result<(), Declined> {
        loop {
            match self.at(self.pos) {
                b' ' => self.pos += 1,
                b'\n' => {
                    self.pos += 1;
                    let start = self.pos;
                    self.spaces();
                    if !matches!(self.at(self.pos), b'\n' | b'#')
                        && (self.pos - start <= inside || self.marker(start))
                    {
                        return Err(Declined);
                    }
                }
                b'#' if matches!(self.at(self.pos - 1), b' ' | b'\n') => self.skip_to_eol(),
                _ => return Ok(()),
            }
        }
    }

    fn set_flow(&mut self, to: Flow) {
        if let Some(Frame::FlowMap { state, .. } | Frame::FlowSeq { state, .. }) =
            self.stack.last_mut()
        {
            *state = to;
        }
    }

    fn flow(&mut self, state: Flow, inside: usize, map: bool) -> Result<Event<'a>, Declined> {
        self.fresh = None;
        self.flow_space(inside)?;
        let c = self.at(self.pos);
        let close = if map { b'}' } else { b']' };
        match state {
            Flow::First if c == close => {
                self.pos += 1;
                Ok(self.pop(if map { Event::MapEnd } else { Event::SeqEnd }))
            }
            Flow::Next if c == close => {
                self.pos += 1;
                Ok(self.pop(if map { Event::MapEnd } else { Event::SeqEnd }))
            }
            Flow::Next if c == b',' => {
                self.pos += 1;
                self.set_flow(Flow::Entry);
                self.flow(Flow::Entry, inside, map)
            }
            Flow::Next => Err(Declined),
            Flow::First | Flow::Entry if map => {
                let key = self.scalar(true)?;
                // The key's colon must be on its line, followed by a blank.
                if !self.colon_follows() {
                    return Err(Declined);
                }
                self.spaces();
                self.pos += 1;
                self.set_flow(Flow::Value);
                Ok(Event::Scalar(key))
            }
            Flow::First | Flow::Entry | Flow::Value => {
                self.set_flow(Flow::Next);
                match c {
                    b'{' | b'[' => {
                        self.pos += 1;
                        let state = Flow::First;
                        self.stack.push(if c == b'{' {
                            Frame::FlowMap { state, inside }
                        } else {
                            Frame::FlowSeq { state, inside }
                        });
                        Ok(if c == b'{' {
                            Event::MapStart
                        } else {
                            Event::SeqStart
                        })
                    }
                    _ => {
                        let scalar = self.scalar(true)?;
                        // A `key: value` pair inside a sequence, or a second colon in a value.
                        let mut i = self.pos;
                        while matches!(self.at(i), b' ' | b'\n') {
                            i += 1;
                        }
                        if self.at(i) == b':' {
                            return Err(Declined);
                        }
                        Ok(Event::Scalar(scalar))
                    }
                }
            }
        }
    }

    /// A scalar at the position: quoted, or plain when its first character may start one.
    fn scalar(&mut self, flow: bool) -> Result<Scalar<'a>, Declined> {
        match self.at(self.pos) {
            b'\'' => self.single_quoted(),
            b'"' => self.double_quoted(),
            c if plain_start(c, self.at(self.pos + 1)) => Ok(Scalar {
                text: Cow::Borrowed(self.plain(flow)?),
                plain: true,
            }),
            _ => Err(Declined),
        }
    }

    /// A plain scalar on one line: up to `: `, ` #`, the line's end, and in a flow collection
    /// `,` `[` `]` `{` `}`; spaces inside are kept, trailing ones are not (libyaml's rules).
    fn plain(&mut self, flow: bool) -> Result<&'a str, Declined> {
        let start = self.pos;
        let mut end = start;
        let mut i = start;
        loop {
            match self.at(i) {
                0 | b'\n' => break,
                b' ' => i += 1,
                b'#' if self.at(i - 1) == b' ' => break,
                b':' if matches!(self.at(i + 1), b' ' | b'\n' | 0) => break,
                b':' if flow
                    && matches!(self.at(i + 1), b',' | b'?' | b'[' | b']' | b'{' | b'}') =>
                {
                    return Err(Declined)
                }
                b',' | b'[' | b']' | b'{' | b'}' if flow => break,
                _ => {
                    i += 1;
                    end = i;
                }
            }
        }
        // `i` may stop inside a multi-byte character only at a byte < 0x80, so `end` is a
        // character boundary: every byte ≥ 0x80 was taken by the arm that moves `end`.
        self.pos = end;
        self.s.get(start..end).ok_or(Declined)
    }

    fn single_quoted(&mut self) -> Result<Scalar<'a>, Declined> {
        let start = self.pos + 1;
        let (mut i, mut from) = (start, start);
        let mut out: Option<String> = None;
        loop {
            match self.at(i) {
                0 | b'\n' => return Err(Declined),
                b'\'' if self.at(i + 1) == b'\'' => {
                    let o = out.get_or_insert_with(String::new);
                    o.push_str(self.s.get(from..i).ok_or(Declined)?);
                    o.push('\'');
                    i += 2;
                    from = i;
                }
                b'\'' => break,
                _ => i += 1,
            }
        }
        self.quoted_end(out, from, i)
    }

    /// The quoted scalar's text from what was collected and the last run `from..end`; the
    /// position moves past the closing quote at `end`.
    fn quoted_end(
        &mut self,
        out: Option<String>,
        from: usize,
        end: usize,
    ) -> Result<Scalar<'a>, Declined> {
        let last = self.s.get(from..end).ok_or(Declined)?;
        self.pos = end + 1;
        let text = match out {
            None => Cow::Borrowed(last),
            Some(mut o) => {
                o.push_str(last);
                Cow::Owned(o)
            }
        };
        Ok(Scalar { text, plain: false })
    }

    fn double_quoted(&mut self) -> Result<Scalar<'a>, Declined> {
        let start = self.pos + 1;
        let mut i = start;
        let mut out: Option<String> = None;
        let mut from = start;
        loop {
            match self.at(i) {
                0 | b'\n' => return Err(Declined),
                b'"' => break,
                b'\\' => {
                    let o = out.get_or_insert_with(String::new);
                    o.push_str(self.s.get(from..i).ok_or(Declined)?);
                    let (c, len) = escape(&self.b[i + 1..])?;
                    o.push(c);
                    i += 1 + len;
                    from = i;
                }
                _ => i += 1,
            }
        }
        self.quoted_end(out, from, i)
    }
}

/// Whether a plain scalar may start with `c` (followed by `next`): not an indicator, nor a
/// space; `-` only before a digit or a dot (a negative number). Stricter than YAML.
fn plain_start(c: u8, next: u8) -> bool {
    match c {
        b'-' => next.is_ascii_digit() || next == b'.',
        0 | b' ' | b'\n' | b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|'
        | b'>' | b'\'' | b'"' | b'%' | b'@' | b'`' | b'?' | b':' => false,
        _ => true,
    }
}

/// A double-quoted escape after its backslash, as libyaml reads it: the character and how many
/// bytes it took. A line-break escape or an invalid code point is declined.
fn escape(rest: &[u8]) -> Result<(char, usize), Declined> {
    let hex = |n: usize| -> Result<(char, usize), Declined> {
        let digits = rest.get(1..1 + n).ok_or(Declined)?;
        let text = std::str::from_utf8(digits).map_err(|_| Declined)?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(Declined);
        }
        let code = u32::from_str_radix(text, 16).map_err(|_| Declined)?;
        Ok((char::from_u32(code).ok_or(Declined)?, 1 + n))
    };
    let c = match rest.first().copied().ok_or(Declined)? {
        b'0' => '\0',
        b'a' => '\u{7}',
        b'b' => '\u{8}',
        b't' => '\t',
        b'n' => '\n',
        b'v' => '\u{b}',
        b'f' => '\u{c}',
        b'r' => '\r',
        b'e' => '\u{1b}',
        b' ' => ' ',
        b'"' => '"',
        b'/' => '/',
        b'\\' => '\\',
        b'N' => '\u{85}',
        b'_' => '\u{a0}',
        b'L' => '\u{2028}',
        b'P' => '\u{2029}',
        b'x' => return hex(2),
        b'u' => return hex(4),
        b'U' => return hex(8),
        _ => return Err(Declined),
    };
    Ok((c, 1))
}
