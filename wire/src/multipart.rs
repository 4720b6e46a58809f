//! `multipart/form-data` bodies (RFC 7578 over RFC 2046's multipart syntax), parsed from a byte
//! slice: the AI pipelines that take an image receive their fields this way.
//!
//! The parser borrows each part's bytes from the body, reads only `Content-Disposition` (the
//! part's `name` and, for a file, its `filename`) and `Content-Type` from a part's headers, and
//! is bounded: at most [`MAX_PARTS`] parts, [`MAX_HEADER_BYTES`] of headers per part. Lines end
//! in CRLF as the RFC requires (every HTTP client sends them); a bare LF is data. The preamble
//! before the first delimiter and the epilogue after the closing one are ignored. Any input is an
//! answer, never a panic.

/// The most parts a body may have (the AI forms have at most a dozen fields).
pub const MAX_PARTS: usize = 64;

/// The most bytes of headers one part may have.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// RFC 2046's longest boundary.
pub const MAX_BOUNDARY: usize = 70;

/// Why a body is not `multipart/form-data`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    #[error("the content type is not multipart/form-data")]
    NotFormData,
    #[error("the content type has no boundary")]
    NoBoundary,
    #[error("the boundary is not 1 to {MAX_BOUNDARY} characters")]
    BadBoundary,
    #[error("the body has no opening boundary")]
    NoOpening,
    #[error("the body ends before its closing boundary")]
    Truncated,
    #[error("a part's headers are malformed")]
    BadHeaders,
    #[error("a part's headers exceed {MAX_HEADER_BYTES} bytes")]
    HeadersTooLong,
    #[error("a part has no Content-Disposition: form-data with a name")]
    NoName,
    #[error("the body has more than {MAX_PARTS} parts")]
    TooManyParts,
}

/// One field of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    /// `Content-Disposition`'s `name`.
    pub name: String,
    /// `Content-Disposition`'s `filename` (or `filename*`, as sent): set for a file.
    pub filename: Option<String>,
    /// The part's `Content-Type`, if it has one.
    pub content_type: Option<String>,
    /// The part's bytes, as sent.
    pub data: &'a [u8],
}

/// The boundary of a `multipart/form-data` content type (quoted or not).
pub fn boundary(content_type: &str) -> Result<String, MultipartError> {
    let (media_type, params) = split_params(content_type);
    if !media_type.eq_ignore_ascii_case("multipart/form-data") {
        return Err(MultipartError::NotFormData);
    }
    let boundary =
        params.into_iter().find(|(k, _)| k == "boundary").map(|(_, v)| v).ok_or(MultipartError::NoBoundary)?;
    if boundary.is_empty() || boundary.len() > MAX_BOUNDARY || boundary.contains(['\r', '\n']) {
        return Err(MultipartError::BadBoundary);
    }
    Ok(boundary)
}

/// The parts of a `multipart/form-data` body, in order.
pub fn parse<'a>(content_type: &str, body: &'a [u8]) -> Result<Vec<Part<'a>>, MultipartError> {
    let boundary = boundary(content_type)?;
    let dashed = format!("--{boundary}");
    // Every delimiter but one at the very start of the body follows a CRLF, which belongs to it.
    let delimiter = format!("\r\n{dashed}");
    let opening = match body.strip_prefix(dashed.as_bytes()).and_then(line_after) {
        Some(line) => Some(line.at(dashed.len())),
        None => next_delimiter(body, 0, delimiter.as_bytes()).map(|(_, line)| line),
    };
    let mut next = opening.ok_or(MultipartError::NoOpening)?;
    let mut parts = Vec::new();
    while let Line::Part(start) = next {
        if parts.len() == MAX_PARTS {
            return Err(MultipartError::TooManyParts);
        }
        let (head, data_start) = headers(body, start)?;
        let (data_end, line) =
            next_delimiter(body, data_start, delimiter.as_bytes()).ok_or(MultipartError::Truncated)?;
        let mut part = part_headers(head)?;
        part.data = body.get(data_start..data_end).ok_or(MultipartError::Truncated)?;
        parts.push(part);
        next = line;
    }
    Ok(parts)
}

/// What follows a delimiter.
#[derive(Debug, Clone, Copy)]
enum Line {
    /// A part whose headers start at this index.
    Part(usize),
    /// The closing delimiter: the rest is epilogue.
    Close,
}

impl Line {
    /// This line with its index moved on by `offset`.
    fn at(self, offset: usize) -> Line {
        match self {
            Line::Part(i) => Line::Part(i + offset),
            Line::Close => Line::Close,
        }
    }
}

/// What the bytes after a delimiter make of it: `--` closes, optional whitespace then CRLF
/// starts a part (index relative to `after`), anything else means it was not a delimiter.
fn line_after(after: &[u8]) -> Option<Line> {
    if after.starts_with(b"--") {
        return Some(Line::Close);
    }
    let pad = after.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
    after.get(pad..).filter(|rest| rest.starts_with(b"\r\n")).map(|_| Line::Part(pad + 2))
}

/// The first delimiter line at or after `from`: where its CRLF starts, and what follows it.
/// RFC 2046 forbids the delimiter inside a part, but one followed by other bytes is data.
fn next_delimiter(body: &[u8], from: usize, delimiter: &[u8]) -> Option<(usize, Line)> {
    let mut search = from;
    loop {
        let start = search + find(body.get(search..)?, delimiter)?;
        let end = start + delimiter.len();
        if let Some(line) = body.get(end..).and_then(line_after) {
            return Some((start, line.at(end)));
        }
        search = start + 1;
    }
}

/// A part's header block starting at `start`, and where its data starts.
fn headers(body: &[u8], start: usize) -> Result<(&[u8], usize), MultipartError> {
    let rest = body.get(start..).ok_or(MultipartError::Truncated)?;
    if rest.starts_with(b"\r\n") {
        return Ok((&[], start + 2));
    }
    let window = &rest[..rest.len().min(MAX_HEADER_BYTES + 4)];
    match find(window, b"\r\n\r\n") {
        Some(end) => Ok((&rest[..end], start + end + 4)),
        None if rest.len() > window.len() => Err(MultipartError::HeadersTooLong),
        None => Err(MultipartError::Truncated),
    }
}

/// The name, filename and content type a part's headers give it (data still empty).
fn part_headers(head: &[u8]) -> Result<Part<'static>, MultipartError> {
    let head = String::from_utf8_lossy(head);
    let mut disposition = None;
    let mut content_type = None;
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        // Folded (obsolete) and nameless header lines are refused.
        let (name, value) = line.split_once(':').ok_or(MultipartError::BadHeaders)?;
        if name.is_empty() || name.starts_with([' ', '\t']) {
            return Err(MultipartError::BadHeaders);
        }
        if name.eq_ignore_ascii_case("content-disposition") {
            disposition = Some(value.trim().to_string());
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_string());
        }
    }
    let (kind, params) = split_params(disposition.as_deref().ok_or(MultipartError::NoName)?);
    if !kind.eq_ignore_ascii_case("form-data") {
        return Err(MultipartError::NoName);
    }
    let param = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let name = param("name").ok_or(MultipartError::NoName)?;
    let filename = param("filename").or_else(|| param("filename*"));
    Ok(Part { name, filename, content_type, data: &[] })
}

/// Splits a header value `token; a=b; c="d;e"` into its first token and its parameters (names
/// lower-cased, quoted values unquoted, backslash escapes in them resolved).
fn split_params(value: &str) -> (&str, Vec<(String, String)>) {
    let (head, mut rest) = value.split_once(';').unwrap_or((value, ""));
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            break;
        }
        let name_end = rest.find(['=', ';']).unwrap_or(rest.len());
        let name = rest[..name_end].trim().to_ascii_lowercase();
        rest = &rest[name_end..];
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start_matches([' ', '\t']);
            if let Some(quoted) = after.strip_prefix('"') {
                let mut end = quoted.len();
                let mut escaped = false;
                for (i, c) in quoted.char_indices() {
                    if escaped {
                        value.push(c);
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        end = i + 1;
                        break;
                    } else {
                        value.push(c);
                    }
                }
                rest = &quoted[end..];
            } else {
                let end = after.find(';').unwrap_or(after.len());
                value = after[..end].trim().to_string();
                rest = &after[end..];
            }
        }
        params.push((name, value));
    }
    (head.trim(), params)
}

/// Where `needle` (not empty) first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_split_with_quotes() {
        let (kind, params) = split_params(r#"form-data; name="a;b"; filename="x \"y\".png""#);
        assert_eq!(kind, "form-data");
        assert_eq!(params, vec![("name".into(), "a;b".into()), ("filename".into(), r#"x "y".png"#.into())]);
        // An unterminated quote takes the rest; junk is skipped without a panic.
        let (_, params) = split_params("x; name=\"abc; =;=; ;");
        assert_eq!(params[0], ("name".into(), "abc; =;=; ;".into()));
        let (_, params) = split_params("x;=;a;b=");
        assert_eq!(params.len(), 3);
    }

    #[test]
    fn boundaries() {
        assert_eq!(boundary("multipart/form-data; boundary=abc").unwrap(), "abc");
        assert_eq!(boundary("Multipart/Form-Data;charset=utf-8; BOUNDARY=\"a b:c\"").unwrap(), "a b:c");
        assert_eq!(boundary("multipart/mixed; boundary=abc"), Err(MultipartError::NotFormData));
        assert_eq!(boundary("multipart/form-data"), Err(MultipartError::NoBoundary));
        assert_eq!(boundary("multipart/form-data; boundary=\"\""), Err(MultipartError::BadBoundary));
        assert_eq!(
            boundary(&format!("multipart/form-data; boundary={}", "x".repeat(71))),
            Err(MultipartError::BadBoundary)
        );
    }
}
