//! Active providers ("listening"). Placeholder until the registry lands.

use std::time::Duration;

use super::Engine;

pub struct Listening {
    _response_timeout: Duration,
}

impl Listening {
    pub fn new(response_timeout: Duration) -> Self {
        Listening { _response_timeout: response_timeout }
    }
    pub(crate) fn record_subscribed(&self, _engine: &Engine, _name: &str) {}
    pub(crate) fn record_unsubscribed(&self, _engine: &Engine, _name: &str) {}
}
