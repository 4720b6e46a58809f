//! A bounds check of AMF0 command messages before they are decoded. scuffle-amf0 reserves
//! what an array or ECMA array *declares* (`Vec::with_capacity(count)`), so a 20-byte command
//! declaring 2^32 elements would ask for hundreds of GB and abort the process. Here every
//! count must fit in the bytes that are actually left, every length within the message, and
//! nesting at most [`MAX_DEPTH`] deep.

/// How deep objects and arrays may nest (real commands nest two levels).
pub const MAX_DEPTH: usize = 16;

/// Why a command was refused before decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed AMF0 command: {0}")]
pub struct Amf0Error(&'static str);

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn left(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&[u8], Amf0Error> {
        if n > self.left() {
            return Err(Amf0Error("a length past the end of the message"));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u16(&mut self) -> Result<usize, Amf0Error> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn u32(&mut self) -> Result<usize, Amf0Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn value(&mut self, depth: usize) -> Result<(), Amf0Error> {
        if depth > MAX_DEPTH {
            return Err(Amf0Error("nested too deep"));
        }
        let marker = self.take(1)?[0];
        match marker {
            0x00 => self.take(8).map(drop),                          // number
            0x01 => self.take(1).map(drop),                          // boolean
            0x02 => self.u16().and_then(|n| self.take(n).map(drop)), // string
            0x03 => self.properties(depth),                          // object
            0x05 | 0x06 => Ok(()),                                   // null, undefined
            0x07 => self.take(2).map(drop),                          // reference
            0x08 => {
                // ECMA array: the count is a hint, the entries end with the end marker; each
                // entry is at least 3 bytes (an empty key and a one-byte value).
                let count = self.u32()?;
                if count > self.left() / 3 {
                    return Err(Amf0Error("an ECMA array declares more entries than the message holds"));
                }
                self.properties(depth)
            }
            0x0a => {
                let count = self.u32()?;
                if count > self.left() {
                    return Err(Amf0Error("a strict array declares more elements than the message holds"));
                }
                (0..count).try_for_each(|_| self.value(depth + 1))
            }
            0x0b => self.take(10).map(drop),                                // date
            0x0c | 0x0f => self.u32().and_then(|n| self.take(n).map(drop)), // long string, XML
            0x10 => {
                // typed object: a class name, then properties
                let n = self.u16()?;
                self.take(n)?;
                self.properties(depth)
            }
            _ => Err(Amf0Error("an unsupported AMF0 type")),
        }
    }

    /// Key/value pairs up to the empty key and the object-end marker.
    fn properties(&mut self, depth: usize) -> Result<(), Amf0Error> {
        loop {
            let key = self.u16()?;
            if key == 0 && self.data.get(self.pos) == Some(&0x09) {
                self.pos += 1;
                return Ok(());
            }
            self.take(key)?;
            self.value(depth + 1)?;
        }
    }
}

/// Checks that `data` is a sequence of well-formed AMF0 values that fit in it.
pub fn check(data: &[u8]) -> Result<(), Amf0Error> {
    let mut r = Reader { data, pos: 0 };
    while r.left() > 0 {
        r.value(0)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> Vec<u8> {
        let mut v = vec![0x02];
        v.extend((s.len() as u16).to_be_bytes());
        v.extend(s.as_bytes());
        v
    }

    /// What ffmpeg sends to publish: `connect` with its command object.
    fn connect() -> Vec<u8> {
        let mut v = string("connect");
        v.push(0x00);
        v.extend(1.0f64.to_be_bytes());
        v.push(0x03);
        for (k, val) in [("app", "live"), ("type", "nonprivate"), ("tcUrl", "rtmp://127.0.0.1:1935/live")] {
            v.extend((k.len() as u16).to_be_bytes());
            v.extend(k.as_bytes());
            v.extend(string(val));
        }
        v.extend([0, 0, 0x09]);
        v
    }

    #[test]
    fn real_commands_pass() {
        check(&connect()).unwrap();
        let mut publish = string("publish");
        publish.push(0x00);
        publish.extend(5.0f64.to_be_bytes());
        publish.push(0x05);
        publish.extend(string("mystream"));
        publish.extend(string("live"));
        check(&publish).unwrap();
        // An ECMA array and a strict array that hold what they declare.
        let mut v = vec![0x08, 0, 0, 0, 1, 0, 1, b'a', 0x05, 0, 0, 0x09];
        v.extend([0x0a, 0, 0, 0, 2, 0x05, 0x01, 1]);
        check(&v).unwrap();
    }

    #[test]
    fn declared_sizes_beyond_the_message_are_refused() {
        let mut huge_array = string("x");
        huge_array.extend([0x0a, 0xff, 0xff, 0xff, 0xff, 0x05]);
        assert!(check(&huge_array).is_err());
        assert!(check(&[0x08, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x09]).is_err());
        assert!(check(&[0x02, 0xff, 0xff, b'a']).is_err());
        assert!(check(&[0x0c, 0xff, 0xff, 0xff, 0xff, b'a']).is_err());
        assert!(check(&[0x00, 1, 2]).is_err());
        // An object without its end.
        assert!(check(&[0x03, 0, 1, b'a', 0x05]).is_err());
        assert!(check(&[0x11]).is_err());
        let mut deep: Vec<u8> = std::iter::repeat_n([0x0a, 0, 0, 0, 1], MAX_DEPTH + 2).flatten().collect();
        deep.push(0x05);
        assert_eq!(check(&deep), Err(Amf0Error("nested too deep")));
        // Cut anywhere inside the command object (which starts after the name and number).
        let truncated = connect();
        for n in 20..truncated.len() {
            assert!(check(&truncated[..n]).is_err(), "{n} bytes");
        }
    }
}
