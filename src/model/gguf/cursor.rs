//! A bounds-checked little-endian reader over the bytes of a GGUF file.
//!
//! Every read checks the remaining length first, and every count read from the file is checked
//! against the bytes left before anything is allocated for it, so a truncated or corrupt file
//! gives an error value instead of a panic or a huge allocation.

/// Why a read failed; the caller adds the file name and what it was reading.
pub(crate) type ReadError = String;

pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ReadError> {
        if n > self.remaining() {
            return Err(format!(
                "truncated: {what} needs {n} bytes at offset {}, {} left",
                self.pos,
                self.remaining()
            ));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ReadError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, ReadError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, ReadError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A count of items that each take at least `min_item_bytes` bytes: a count that could not
    /// fit in the rest of the file is corrupt, and refusing it here bounds every allocation.
    pub(crate) fn count(&mut self, min_item_bytes: usize, what: &str) -> Result<usize, ReadError> {
        let n = self.u64(what)?;
        let fits = usize::try_from(n)
            .ok()
            .filter(|&n| n.saturating_mul(min_item_bytes.max(1)) <= self.remaining());
        fits.ok_or_else(|| {
            format!(
                "corrupt: {what} = {n} at offset {} cannot fit in the {} bytes left",
                self.pos - 8,
                self.remaining()
            )
        })
    }

    /// A GGUF string: u64 byte length, then UTF-8 bytes (no terminator).
    pub(crate) fn string(&mut self, what: &str) -> Result<String, ReadError> {
        let len = self.count(1, what)?;
        let start = self.pos;
        let raw = self.take(len, what)?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| format!("corrupt: {what} at offset {start} is not UTF-8"))
    }
}
