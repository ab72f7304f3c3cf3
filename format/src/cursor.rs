//! A bounds-checked little-endian cursor over a byte slice that knows the
//! absolute file offset of every field it reads, so errors can name both.

use binrw::BinRead;

use crate::error::{ErrorKind, FormatError, Result};

pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    /// Position in `bytes`, which is also the absolute file offset.
    pos: usize,
    /// One past the last byte this cursor may read.
    end: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor over `bytes[start..end]`; `end` must be `<= bytes.len()`.
    pub(crate) fn new(bytes: &'a [u8], start: usize, end: usize) -> Self {
        debug_assert!(start <= end && end <= bytes.len());
        Cursor {
            bytes,
            pos: start,
            end,
        }
    }

    pub(crate) fn offset(&self) -> u64 {
        self.pos as u64
    }

    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// Takes `n` bytes, or fails with `truncated` naming `field`.
    pub(crate) fn take(&mut self, n: u64, field: &dyn Fn() -> String) -> Result<&'a [u8]> {
        let available = self.remaining() as u64;
        if n > available {
            return Err(FormatError::new(
                ErrorKind::Truncated,
                field(),
                self.offset(),
                format!(
                    "needs {n} bytes, only {available} remain before byte {}",
                    self.end
                ),
            ));
        }
        let start = self.pos;
        // `n <= available <= usize::MAX` so the cast is lossless.
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    /// Reads a fixed-size binrw record of `len` bytes.
    pub(crate) fn record<T>(&mut self, len: u64, field: &dyn Fn() -> String) -> Result<T>
    where
        T: BinRead,
        for<'b> T::Args<'b>: Default,
    {
        let at = self.offset();
        let raw = self.take(len, field)?;
        T::read_le(&mut std::io::Cursor::new(raw)).map_err(|e| {
            FormatError::new(
                ErrorKind::Truncated,
                field(),
                at,
                format!("unreadable: {e}"),
            )
        })
    }

    pub(crate) fn u8(&mut self, field: &dyn Fn() -> String) -> Result<u8> {
        Ok(self.take(1, field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &dyn Fn() -> String) -> Result<u16> {
        let b = self.take(2, field)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self, field: &dyn Fn() -> String) -> Result<u32> {
        let b = self.take(4, field)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self, field: &dyn Fn() -> String) -> Result<u64> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}
