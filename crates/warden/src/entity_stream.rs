//! Reading an entity file of any size one entity at a time, with the line each starts on:
//! a JSON array of Cedar entities, or JSON lines (one entity per line, blank lines skipped).
//!
//! The array is split into its top-level elements by a small scanner that follows strings and
//! nesting (the elements themselves are parsed by `serde_json`), so neither the file nor the
//! parsed array is ever held whole.

use std::io::BufRead;

/// One entity of the file: where it starts (line, from 1) and its JSON.
#[derive(Debug)]
pub struct Item {
    /// The line it starts on.
    pub line: u64,
    /// The entity, or what is wrong with its JSON.
    pub value: Result<serde_json::Value, String>,
}

/// A problem with the file as a whole (not with one entity).
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Reading failed.
    #[error("reading: {0}")]
    Io(#[from] std::io::Error),
    /// The array is not well-formed.
    #[error("line {line}: {message}")]
    Malformed {
        /// Where.
        line: u64,
        /// What.
        message: String,
    },
}

/// The entities of a reader, in order.
pub struct Entities<R: BufRead> {
    reader: R,
    format: Option<Format>,
    line: u64,
    done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Array,
    Lines,
}

impl<R: BufRead> Entities<R> {
    /// Reads entities from `reader`; the format is told by its first character (`[`: an array).
    pub fn new(reader: R) -> Self {
        Entities {
            reader,
            format: None,
            line: 1,
            done: false,
        }
    }

    fn byte(&mut self) -> Result<Option<u8>, StreamError> {
        let mut one = [0u8; 1];
        match self.reader.read(&mut one)? {
            0 => Ok(None),
            _ => {
                if one[0] == b'\n' {
                    self.line += 1;
                }
                Ok(Some(one[0]))
            }
        }
    }

    fn peek(&mut self) -> Result<Option<u8>, StreamError> {
        Ok(self.reader.fill_buf()?.first().copied())
    }

    fn skip_space(&mut self) -> Result<(), StreamError> {
        while let Some(next) = self.peek()? {
            if !next.is_ascii_whitespace() {
                break;
            }
            self.byte()?;
        }
        Ok(())
    }

    fn malformed(&self, message: impl Into<String>) -> StreamError {
        StreamError::Malformed {
            line: self.line,
            message: message.into(),
        }
    }

    /// The next element of the array: its bytes, up to (not including) the `,` or `]` after it.
    fn next_element(&mut self) -> Result<Option<(u64, Vec<u8>)>, StreamError> {
        self.skip_space()?;
        match self.peek()? {
            Some(b']') => {
                self.byte()?;
                self.done = true;
                self.skip_space()?;
                if self.peek()?.is_some() {
                    return Err(self.malformed("text after the closing `]`"));
                }
                return Ok(None);
            }
            None => return Err(self.malformed("the file ends before the closing `]`")),
            Some(_) => {}
        }
        let start = self.line;
        let mut bytes = Vec::new();
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        loop {
            let Some(next) = self.peek()? else {
                return Err(self.malformed("the file ends inside an entity"));
            };
            if !in_string && depth == 0 && (next == b',' || next == b']') {
                if next == b',' {
                    self.byte()?;
                }
                break;
            }
            self.byte()?;
            bytes.push(next);
            if in_string {
                match (escaped, next) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match next {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or_else(|| self.malformed("a `}` or `]` closes nothing"))?;
                }
                _ => {}
            }
        }
        Ok(Some((start, bytes)))
    }

    fn next_line(&mut self) -> Result<Option<(u64, Vec<u8>)>, StreamError> {
        loop {
            let start = self.line;
            let mut bytes = Vec::new();
            if self.reader.read_until(b'\n', &mut bytes)? == 0 {
                self.done = true;
                return Ok(None);
            }
            self.line += 1;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some((start, bytes)));
        }
    }
}

impl<R: BufRead> Iterator for Entities<R> {
    type Item = Result<Item, StreamError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let format = match self.format {
            Some(format) => format,
            None => {
                if let Err(error) = self.skip_space() {
                    return Some(Err(error));
                }
                let format = match self.peek() {
                    Ok(Some(b'[')) => {
                        if let Err(error) = self.byte() {
                            return Some(Err(error));
                        }
                        Format::Array
                    }
                    Ok(Some(_)) => Format::Lines,
                    Ok(None) => {
                        self.done = true;
                        return None;
                    }
                    Err(error) => return Some(Err(error)),
                };
                self.format = Some(format);
                format
            }
        };
        let next = match format {
            Format::Array => self.next_element(),
            Format::Lines => self.next_line(),
        };
        match next {
            Ok(Some((line, bytes))) => Some(Ok(Item {
                line,
                value: serde_json::from_slice(&bytes).map_err(|error| error.to_string()),
            })),
            Ok(None) => None,
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use super::*;

    fn read(text: &str) -> Vec<(u64, Result<serde_json::Value, String>)> {
        Entities::new(text.as_bytes())
            .map(|item| item.map(|item| (item.line, item.value)))
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn an_array_is_read_element_by_element_with_its_lines() {
        let items = read("[\n  {\"a\": \"x,]}\\\"\"},\n  {\"b\": [1, {\"c\": 2}]}\n]\n");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].0, 2);
        assert_eq!(items[0].1.as_ref().unwrap()["a"], "x,]}\"");
        assert_eq!(items[1].0, 3);
        assert_eq!(items[1].1.as_ref().unwrap()["b"][1]["c"], 2);
        assert!(read("[]").is_empty());
    }

    #[test]
    fn json_lines_are_read_line_by_line_and_a_bad_line_is_reported_alone() {
        let items = read("{\"a\": 1}\n\n{\"a\": \n{\"a\": 3}\n");
        assert_eq!(items.len(), 3);
        assert_eq!((items[0].0, items[1].0, items[2].0), (1, 3, 4));
        assert!(items[1].1.is_err());
        assert_eq!(items[2].1.as_ref().unwrap()["a"], 3);
    }

    #[test]
    fn a_truncated_array_is_an_error_with_its_line() {
        let error = Entities::new("[\n{\"a\": 1},\n{\"a\": ".as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap_err();
        assert!(
            matches!(error, StreamError::Malformed { line: 3, .. }),
            "{error}"
        );
    }
}
