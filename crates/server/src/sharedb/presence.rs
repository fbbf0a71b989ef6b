//! `p`, `ps`, `pu`, `pr`: ShareDB's presence. Not served yet: each is answered with a
//! clear error, as a ShareDB server without presence enabled would leave the client
//! without presence. (Issue 14, item 4.)

use recordsync_sharedb_protocol::{ErrorCode, ShareDbError};

pub fn refuse() -> Result<(), ShareDbError> {
    Err(ShareDbError::new(
        ErrorCode::ERR_DATABASE_METHOD_NOT_IMPLEMENTED,
        "presence is not supported by this recordsync server yet",
    ))
}
