//! What every front door's connections share: the outbound queue ([`outbox`]).

pub mod outbox;
