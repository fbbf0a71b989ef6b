//! Record names.
//!
//! deepstream accepts any non-empty string as a record name. We add one bound, a maximum
//! length, so that a name can always be used as a storage key and in log lines.

use thiserror::Error;

/// Longest record name accepted, in bytes. Storage keys and pub/sub subjects stay small.
pub const MAX_NAME_LEN: usize = 1024;

/// Why a record name was refused. New kinds may be added: match with a `_` arm.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("record name is empty: name the record, e.g. `books/1`")]
    Empty,
    #[error("record name is {0} bytes long; the limit is {MAX_NAME_LEN}")]
    TooLong(usize),
    #[error("record name contains a NUL character, which no storage can keep")]
    Nul,
}

/// Checks that `name` can name a record.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        Err(NameError::Empty)
    } else if name.len() > MAX_NAME_LEN {
        Err(NameError::TooLong(name.len()))
    } else if name.contains('\0') {
        Err(NameError::Nul)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_long_names_are_refused() {
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert!(validate_name("book/iq6auu7d-p9i1vz3q0yi").is_ok());
        let long = "x".repeat(MAX_NAME_LEN + 1);
        assert_eq!(
            validate_name(&long),
            Err(NameError::TooLong(MAX_NAME_LEN + 1))
        );
        assert_eq!(validate_name("a\0b"), Err(NameError::Nul));
    }

    /// The deepstream front door sends these texts to the client that used the name.
    #[test]
    fn messages_say_what_is_wrong_with_the_name() {
        assert_eq!(
            NameError::Empty.to_string(),
            "record name is empty: name the record, e.g. `books/1`"
        );
        assert_eq!(
            NameError::TooLong(2000).to_string(),
            "record name is 2000 bytes long; the limit is 1024"
        );
    }
}
