//! Reading an incidents page from a streamed body without holding it whole.
//!
//! The body is read into a window of [`WINDOW`] bytes, checked as UTF-8 once as it is read; the
//! page object's structure (`{"value": [...], "@odata.nextLink": ...}`) is walked by hand, and
//! each incident is parsed from the window in one pass by serde_json, its strings borrowed from the
//! window. An incident is parsed once: before it starts, the window is
//! refilled when less than [`LOW_WATER`] bytes are left, so only an incident larger than that can
//! run past the window's end, and then the window grows and the parse starts again (at most
//! doubling the work for such an incident). Consumed bytes are dropped on each refill, so memory
//! is the window, whatever the page's size.
//!
//! What is accepted, refused and reported is what parsing the page into `Value`s accepts,
//! refuses and reports ([`crate::reference::read_page`]), except the wording of the position in
//! a JSON error.

use serde::Deserialize;
use skillhost_guest::SkillError;

use crate::paging::{Body, Outcome, PageParse};

/// Bytes a window holds (it grows for an incident larger than this).
pub(crate) const WINDOW: usize = 128 * 1024;

/// The window is refilled before an incident when fewer bytes than this are left in it.
pub(crate) const LOW_WATER: usize = 32 * 1024;

/// How one incident is parsed from the window and what is made of it.
pub(crate) trait PageItem {
    /// What the incident is parsed into, borrowing from the window.
    type Parsed<'de>: Deserialize<'de>;
    /// What is handed out.
    type Item;
    /// Checks and converts a parsed incident whose text is `text`; an error says why it is not an
    /// incident of the API.
    fn finish<'de>(
        &mut self,
        parsed: Self::Parsed<'de>,
        text: &'de [u8],
    ) -> Result<Self::Item, String>;
}

/// A value parsed whole, owning its data.
struct Owned<T>(std::marker::PhantomData<T>);

impl<T: serde::de::DeserializeOwned> PageItem for Owned<T> {
    type Parsed<'de> = T;
    type Item = T;

    fn finish(&mut self, parsed: T, _: &[u8]) -> Result<T, String> {
        Ok(parsed)
    }
}

/// Why the walk stopped.
enum Fault {
    /// The text ended early (the error's words).
    Eof(String),
    /// The text is not JSON (the error's words).
    Syntax(String),
    /// An element of `value` is not an incident.
    NotIncident(String),
    /// The callback failed.
    Stopped(SkillError),
}

/// What a window holds: text checked as UTF-8 once, as it is read (so that incidents are
/// parsed from a `str`, whose strings serde_json need not check one by one); or, once bytes that
/// are not UTF-8 were read, bytes, parsed string by string as a `Value`'s parse checks them.
pub(crate) enum Text {
    /// Valid UTF-8.
    Str(String),
    /// Anything.
    Bytes(Vec<u8>),
}

impl Default for Text {
    fn default() -> Self {
        Text::Str(String::new())
    }
}

impl Text {
    fn bytes(&self) -> &[u8] {
        match self {
            Text::Str(s) => s.as_bytes(),
            Text::Bytes(b) => b,
        }
    }

    /// Drops the first `n` bytes (`n` is always at a character boundary: the parse only stops
    /// after ASCII).
    fn consume(&mut self, n: usize) {
        match self {
            Text::Str(s) if s.is_char_boundary(n) => {
                s.drain(..n);
            }
            Text::Str(s) => {
                let mut bytes = std::mem::take(s).into_bytes();
                bytes.drain(..n);
                *self = Text::Bytes(bytes);
            }
            Text::Bytes(b) => {
                b.drain(..n);
            }
        }
    }

    /// Appends bytes read; returns how many bytes at the end of `data` are the start of a
    /// character cut by the end of the read, which were not appended.
    fn append(&mut self, data: &[u8], last: bool) -> usize {
        match self {
            Text::Bytes(b) => {
                b.extend_from_slice(data);
                0
            }
            // simdutf8 checks 64 bytes a step with wasm's SIMD (core's check takes 8 on wasm32),
            // with the same answer and the same error positions as `std::str::from_utf8`.
            Text::Str(s) => match simdutf8::compat::from_utf8(data) {
                Ok(text) => {
                    s.push_str(text);
                    0
                }
                Err(e) if e.error_len().is_none() && !last => {
                    if let Some(chunk) = data.utf8_chunks().next() {
                        s.push_str(chunk.valid());
                    }
                    data.len() - e.valid_up_to()
                }
                Err(_) => {
                    let mut bytes = std::mem::take(s).into_bytes();
                    bytes.extend_from_slice(data);
                    *self = Text::Bytes(bytes);
                    0
                }
            },
        }
    }
}

/// Bytes asked of the body per read (the guest SDK asks the host for this much at a time too).
const READ: usize = 16 * 1024;

/// A window over a body being read.
struct Window<'a> {
    body: &'a mut dyn Body,
    /// The bytes read and not yet dropped.
    text: &'a mut Text,
    /// Where reads land before they are checked and appended to `text`.
    raw: &'a mut Vec<u8>,
    /// Bytes at the start of `raw`: a character cut by the end of the last read.
    carry: usize,
    /// See [`Buffers`].
    window: usize,
    low_water: usize,
    read: usize,
    /// First byte not consumed.
    start: usize,
    /// Bytes of the body dropped before `text`'s first.
    base: usize,
    /// The body has no more bytes.
    ended: bool,
    /// The body ended with a read error.
    failed: bool,
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\n' | b'\t' | b'\r')
}

/// What one parse attempt gave.
enum Attempt<T> {
    Done(T, usize),
    More,
    Failed(serde_json::Error),
}

impl Window<'_> {
    /// Reads more of the body: drops consumed bytes, then reads until the window holds `want`
    /// bytes (at least [`WINDOW`]) or the body ends.
    fn more(&mut self, want: usize) {
        if self.start > 0 {
            self.text.consume(self.start);
            self.base += self.start;
            self.start = 0;
        }
        let target = want.max(self.window);
        if self.raw.len() < self.read + 4 {
            self.raw.resize(self.read + 4, 0);
        }
        // The window's allocation is sized once (and again only for an incident larger than it),
        // not doubled as it fills.
        if let Text::Str(s) = &mut *self.text
            && s.capacity() < target + self.read
        {
            s.reserve_exact(target + self.read - s.len());
        }
        while self.text.bytes().len() < target && !self.ended {
            // A body that lends its chunks has them checked and appended where they are; a
            // character cut by a chunk's end goes through `raw` with the next read.
            if self.carry == 0
                && let Some(buffered) = self.body.buffered()
            {
                match buffered.fill_buf() {
                    Ok([]) => self.ended = true,
                    Ok(data) => {
                        let n = data.len();
                        let cut = self.text.append(data, false);
                        self.raw[..cut].copy_from_slice(&data[n - cut..]);
                        self.carry = cut;
                        buffered.consume(n);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        self.ended = true;
                        self.failed = true;
                    }
                }
                continue;
            }
            let read = self
                .body
                .read(&mut self.raw[self.carry..self.carry + self.read]);
            let n = match read {
                Ok(0) => {
                    self.ended = true;
                    0
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.ended = true;
                    self.failed = true;
                    0
                }
            };
            let filled = self.carry + n;
            let cut = self.text.append(&self.raw[..filled], self.ended);
            self.raw.copy_within(filled - cut..filled, 0);
            self.carry = cut;
        }
    }

    fn available(&self) -> usize {
        self.text.bytes().len() - self.start
    }

    /// The next byte that is not white space, not consumed; `None` at the end of the body.
    fn peek(&mut self) -> Option<u8> {
        loop {
            let bytes = self.text.bytes();
            while let Some(&byte) = bytes.get(self.start) {
                if !is_space(byte) {
                    return Some(byte);
                }
                self.start += 1;
            }
            if self.ended {
                return None;
            }
            self.more(0);
        }
    }

    /// Where the next byte is in the body, for messages.
    fn position(&self) -> usize {
        self.base + self.start
    }

    /// Consumes the next non-space byte if it is `byte`.
    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.start += 1;
            true
        } else {
            false
        }
    }

    /// An error for the byte at hand: EOF when there is none.
    fn unexpected(&mut self, expected: &str, eof_while: &str) -> Fault {
        match self.peek() {
            None => Fault::Eof(format!(
                "EOF while parsing {eof_while} at byte {}",
                self.position()
            )),
            Some(_) => Fault::Syntax(format!("expected {expected} at byte {}", self.position())),
        }
    }

    /// Parses one value with `item` from the window, growing the window until the value fits.
    fn value<P: PageItem>(&mut self, item: &mut P) -> Result<P::Item, Fault> {
        if self.available() < self.low_water && !self.ended {
            self.more(0);
        }
        loop {
            if let Some(done) = self.try_value(item)? {
                return Ok(done);
            }
            let want = self.available().saturating_mul(2);
            self.more(want);
        }
    }

    /// One attempt at [`Window::value`]: `None` when the value runs past what was read.
    fn try_value<P: PageItem>(&mut self, item: &mut P) -> Result<Option<P::Item>, Fault> {
        let (start, ended) = (self.start, self.ended);
        let tried = match &*self.text {
            Text::Str(s) => {
                let text = s.get(start..).unwrap_or_default();
                crate::json::on_utf8_text(|| {
                    attempt(
                        serde_json::Deserializer::from_str(text).into_iter::<P::Parsed<'_>>(),
                        text.as_bytes(),
                        ended,
                    )
                })
            }
            Text::Bytes(b) => {
                let text = b.get(start..).unwrap_or_default();
                attempt(
                    serde_json::Deserializer::from_slice(text).into_iter::<P::Parsed<'_>>(),
                    text,
                    ended,
                )
            }
        };
        match tried {
            Attempt::Done(parsed, used) => {
                let text = self.text.bytes();
                let done = item.finish(parsed, text.get(start..start + used).unwrap_or_default());
                self.start += used;
                done.map(Some).map_err(Fault::NotIncident)
            }
            Attempt::More => Ok(None),
            Attempt::Failed(e) => Err(self.json_fault(&e)),
        }
    }

    fn json_fault(&self, e: &serde_json::Error) -> Fault {
        let text = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let words = text.strip_suffix(&suffix).unwrap_or(&text);
        let at = if e.line() <= 1 {
            format!("at byte {}", self.position() + e.column().saturating_sub(1))
        } else {
            format!(
                "at line {} column {} of the value that starts at byte {}",
                e.line(),
                e.column(),
                self.position()
            )
        };
        let message = format!("{words} {at}");
        if e.is_eof() {
            Fault::Eof(message)
        } else {
            Fault::Syntax(message)
        }
    }
}

/// Takes one value from `stream` over `text` (white space first is skipped). A value that
/// reaches the end of `text` before the body's end is not trusted (a number may go on), and more
/// text is asked for, unless it closed itself (a string, list or object).
fn attempt<'de, R: serde_json::de::Read<'de>, T: Deserialize<'de>>(
    mut stream: serde_json::StreamDeserializer<'de, R, T>,
    text: &'de [u8],
    ended: bool,
) -> Attempt<T> {
    match stream.next() {
        None if ended => match serde_json::from_slice::<serde::de::IgnoredAny>(text) {
            Err(e) => Attempt::Failed(e),
            Ok(_) => Attempt::More,
        },
        None => Attempt::More,
        Some(Ok(value)) => {
            let used = stream.byte_offset();
            let closed = text
                .iter()
                .find(|b| !is_space(**b))
                .is_some_and(|b| matches!(b, b'{' | b'[' | b'"'));
            if used < text.len() || ended || closed {
                Attempt::Done(value, used)
            } else {
                Attempt::More
            }
        }
        // serde_json words some cuts as other errors (a number cut after its `-` is "invalid
        // number"): an error at the very end of the text may be a cut too.
        Some(Err(e)) if !ended && (e.is_eof() || at_end(&e, text)) => Attempt::More,
        Some(Err(e)) => Attempt::Failed(e),
    }
}

/// Whether `error` is at the last byte of `text` or after it.
fn at_end(error: &serde_json::Error, text: &[u8]) -> bool {
    if error.line() == 0 {
        return false;
    }
    // serde_json's position: the line (from 1) and the byte in it (from 0).
    let mut line_start = 0;
    for _ in 1..error.line() {
        match text[line_start..].iter().position(|&b| b == b'\n') {
            Some(newline) => line_start += newline + 1,
            None => return true,
        }
    }
    line_start + error.column() + 1 >= text.len()
}

/// The buffers of a window, kept from page to page, and its sizes.
pub(crate) struct Buffers {
    text: Text,
    raw: Vec<u8>,
    /// [`WINDOW`], smaller in tests.
    pub window: usize,
    /// [`LOW_WATER`], smaller in tests.
    pub low_water: usize,
    /// Bytes asked of the body per read: [`READ`], smaller in tests.
    pub read: usize,
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers {
            text: Text::default(),
            raw: Vec::new(),
            window: WINDOW,
            low_water: LOW_WATER,
            read: READ,
        }
    }
}

/// Reads one page from `body` through `buffers`, handing each incident, parsed by `item`, to
/// `on_item`.
pub(crate) fn read_page<P: PageItem>(
    body: &mut dyn Body,
    buffers: &mut Buffers,
    item: &mut P,
    on_item: &mut dyn FnMut(P::Item) -> Result<(), SkillError>,
) -> Outcome {
    let mut text = match std::mem::take(&mut buffers.text) {
        // Kept for its allocation, unless it grew for a huge incident.
        Text::Str(mut s) if s.capacity() <= 4 * buffers.window => {
            s.clear();
            Text::Str(s)
        }
        _ => Text::default(),
    };
    let mut reader = Window {
        body,
        text: &mut text,
        raw: &mut buffers.raw,
        window: buffers.window,
        low_water: buffers.low_water,
        read: buffers.read,
        carry: 0,
        start: 0,
        base: 0,
        ended: false,
        failed: false,
    };
    let walked = walk(&mut reader, item, on_item);
    let failed = reader.failed;
    buffers.text = text;
    let (parse, ran_out) = match walked {
        Ok(page) => (page, false),
        Err(Fault::Stopped(error)) => (PageParse::Stopped(error), false),
        Err(Fault::NotIncident(why)) => (PageParse::NotIncident(why), false),
        Err(Fault::Syntax(words)) => (PageParse::Invalid(words), false),
        Err(Fault::Eof(words)) => (PageParse::Invalid(words), true),
    };
    Outcome {
        parse,
        // The window reads ahead of the parse: a read error matters only when the parse needed
        // the bytes it withheld, as it would have reading byte by byte.
        body_error_matters: ran_out && failed,
    }
}

/// Walks the page object.
fn walk<P: PageItem>(
    reader: &mut Window,
    item: &mut P,
    on_item: &mut dyn FnMut(P::Item) -> Result<(), SkillError>,
) -> Result<PageParse, Fault> {
    if !reader.eat(b'{') {
        return Err(reader.unexpected("an incidents page object", "a value"));
    }
    let mut saw_value = false;
    let mut count = 0;
    let mut next_link = None;
    if reader.eat(b'}') {
        return Ok(PageParse::NoValue);
    }
    loop {
        if reader.peek() != Some(b'"') {
            return Err(reader.unexpected("a string key", "an object"));
        }
        let key: String = reader.value(&mut Owned(std::marker::PhantomData))?;
        if !reader.eat(b':') {
            return Err(reader.unexpected("`:`", "an object"));
        }
        match key.as_str() {
            "value" => {
                saw_value = true;
                count += incidents(reader, item, on_item)?;
            }
            "@odata.nextLink" => {
                next_link = reader.value::<Owned<Option<String>>>(&mut Owned(Default::default()))?
            }
            _ => {
                reader.value::<Owned<serde::de::IgnoredAny>>(&mut Owned(Default::default()))?;
            }
        }
        if reader.eat(b',') {
            if reader.peek() == Some(b'}') {
                return Err(Fault::Syntax(format!(
                    "trailing comma at byte {}",
                    reader.position()
                )));
            }
            continue;
        }
        if reader.eat(b'}') {
            break;
        }
        return Err(reader.unexpected("`,` or `}`", "an object"));
    }
    Ok(if saw_value {
        PageParse::Page { count, next_link }
    } else {
        PageParse::NoValue
    })
}

/// Walks the `value` list, handing out each incident; returns how many there were.
fn incidents<P: PageItem>(
    reader: &mut Window,
    item: &mut P,
    on_item: &mut dyn FnMut(P::Item) -> Result<(), SkillError>,
) -> Result<usize, Fault> {
    if !reader.eat(b'[') {
        return Err(reader.unexpected("a list of incidents", "a value"));
    }
    let mut count = 0;
    if reader.eat(b']') {
        return Ok(0);
    }
    loop {
        if reader.peek() == Some(b']') {
            return Err(Fault::Syntax(format!(
                "trailing comma at byte {}",
                reader.position()
            )));
        }
        let incident = reader.value(item)?;
        count += 1;
        on_item(incident).map_err(Fault::Stopped)?;
        if reader.eat(b',') {
            continue;
        }
        if reader.eat(b']') {
            return Ok(count);
        }
        return Err(reader.unexpected("`,` or `]`", "a list"));
    }
}
