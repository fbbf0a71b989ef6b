//! [`List`]: a record whose value is an array of record names.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use serde_json::Value;

use crate::ack::WriteAck;
use crate::error::Error;
use crate::record::{Record, Subscription};

/// An ordered list of record names, stored as a record whose value is a JSON array of
/// strings (deepstream's `client.record.getList`). Every change writes the whole array.
#[derive(Clone, Debug)]
pub struct List {
    record: Record,
}

impl List {
    pub(crate) fn new(record: Record) -> List {
        List { record }
    }

    pub fn name(&self) -> &str {
        self.record.name()
    }

    /// The record underneath.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Waits until the list has its value.
    pub async fn when_ready(&self) -> Result<(), Error> {
        self.record.when_ready().await
    }

    /// The entries; empty when the value is not an array of strings (a new list is `{}`).
    pub fn entries(&self) -> Vec<String> {
        entries_of(&self.record.get("").unwrap_or(Value::Null))
    }

    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    /// Replaces the entries.
    pub fn set_entries<S: AsRef<str>>(&self, entries: &[S]) -> Result<(), Error> {
        self.record.set("", to_value(entries))
    }

    /// Replaces the entries, with a future that completes once the server has stored them.
    pub fn set_entries_with_ack<S: AsRef<str>>(&self, entries: &[S]) -> WriteAck {
        self.record.set_with_ack("", to_value(entries))
    }

    /// Inserts `entry` at `index` (appends when `None` or past the end).
    pub fn add_entry(&self, entry: &str, index: Option<usize>) -> Result<(), Error> {
        let mut entries = self.entries();
        let at = index.unwrap_or(entries.len()).min(entries.len());
        entries.insert(at, entry.to_owned());
        self.set_entries(&entries)
    }

    /// Removes every occurrence of `entry`.
    pub fn remove_entry(&self, entry: &str) -> Result<(), Error> {
        let mut entries = self.entries();
        entries.retain(|e| e != entry);
        self.set_entries(&entries)
    }

    /// Removes the entry at `index`, if there is one.
    pub fn remove_at(&self, index: usize) -> Result<(), Error> {
        let mut entries = self.entries();
        if index < entries.len() {
            entries.remove(index);
        }
        self.set_entries(&entries)
    }

    /// A stream of the entries: first when ready, then after every change.
    pub fn subscribe(&self) -> Result<ListSubscription, Error> {
        Ok(ListSubscription {
            inner: self.record.subscribe("")?,
        })
    }

    /// Deletes the list's record.
    pub async fn delete(&self) -> Result<(), Error> {
        self.record.delete().await
    }

    /// Drops this handle (see [`Record::discard`]).
    pub fn discard(self) {}
}

/// The entries of a [`List`] as they change.
pub struct ListSubscription {
    inner: Subscription,
}

impl ListSubscription {
    pub async fn next(&mut self) -> Option<Vec<String>> {
        self.inner.next().await.map(|v| entries_of(&v))
    }
}

impl Stream for ListSubscription {
    type Item = Vec<String>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner)
            .poll_next(cx)
            .map(|v| v.map(|v| entries_of(&v)))
    }
}

fn entries_of(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn to_value<S: AsRef<str>>(entries: &[S]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| Value::String(e.as_ref().to_owned()))
            .collect(),
    )
}
