//! The listing cases of the conformance suite: [`Store::list`] pages through live
//! records by name prefix the same on every store.
//!
//! Every case lists under its own unique prefix, so stores shared between cases (one
//! PostgreSQL database) answer as if they held only the case's records. The case with
//! an empty prefix starts after that unique prefix: the names starting with it are the
//! first ones above it in byte order.

use std::sync::Arc;

use super::{commit_ok, delete, put, recreate, unique};
use crate::store::Store;

/// Names listed by `list(prefix, after, limit)`.
async fn names(
    store: &Arc<dyn Store>,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Vec<String> {
    let records = store.list(prefix, after, limit).await.expect("list failed");
    assert!(records.iter().all(|r| !r.deleted), "a tombstone was listed");
    records.into_iter().map(|r| r.name).collect()
}

/// Writes version 1 of each of `names`.
async fn create(store: &Arc<dyn Store>, names: &[String]) {
    commit_ok(store, names.iter().map(|n| put(n, 1)).collect()).await;
}

/// `base` followed by each of `tails`.
fn under(base: &str, tails: &[&str]) -> Vec<String> {
    tails.iter().map(|t| format!("{base}{t}")).collect()
}

/// A prefix that is a whole name, that ends inside a multi-byte character's range, that
/// ends in U+10FFFF (whose range end is computed with a carry), or that is empty; a
/// cursor below, inside and above the prefix; a limit of 0.
pub async fn list_prefix_edges(store: Arc<dyn Store>) {
    let base = format!("{}/", unique("list_edges"));
    let all = under(
        &base,
        &[
            "ab",
            "ab/x",
            "abc",
            "ac",
            "é",
            "é1",
            "ê",
            "日本",
            "日本語",
            "🦀",
            "\u{10FFFF}",
            "\u{10FFFF}x",
        ],
    );
    create(&store, &all).await;
    let sorted = {
        let mut s = all.clone();
        s.sort();
        s
    };
    let p = |tail: &str| format!("{base}{tail}");

    // The records' values come back whole.
    let first = store.list(&p("ab"), None, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(Some(&first[0]), store.get(&p("ab")).await.unwrap().as_ref());

    assert_eq!(names(&store, &base, None, 100).await, sorted);
    // A prefix that is a whole name lists it and the names that extend it, in byte order
    // ('/' sorts before 'c').
    assert_eq!(
        names(&store, &p("ab"), None, 100).await,
        under(&base, &["ab", "ab/x", "abc"])
    );
    assert_eq!(names(&store, &p("abc"), None, 100).await, vec![p("abc")]);
    assert_eq!(
        names(&store, &p("abd"), None, 100).await,
        Vec::<String>::new()
    );
    assert_eq!(
        names(&store, &p("é"), None, 100).await,
        under(&base, &["é", "é1"])
    );
    assert_eq!(
        names(&store, &p("日本"), None, 100).await,
        under(&base, &["日本", "日本語"])
    );
    assert_eq!(names(&store, &p("🦀"), None, 100).await, vec![p("🦀")]);
    assert_eq!(
        names(&store, &p("\u{10FFFF}"), None, 100).await,
        under(&base, &["\u{10FFFF}", "\u{10FFFF}x"])
    );
    // A name outside the prefix is not listed even when it sorts right after it.
    assert_eq!(names(&store, &p("a"), None, 100).await.len(), 4);

    // Cursors: below the prefix (ignored), inside it, past its end.
    assert_eq!(
        names(&store, &p("ab"), Some(&p("a")), 100).await,
        under(&base, &["ab", "ab/x", "abc"])
    );
    assert_eq!(
        names(&store, &p("ab"), Some(&p("ab")), 100).await,
        under(&base, &["ab/x", "abc"])
    );
    assert_eq!(
        names(&store, &p("ab"), Some(&p("ab/a")), 100).await,
        under(&base, &["ab/x", "abc"])
    );
    assert_eq!(
        names(&store, &p("ab"), Some(&p("abc")), 100).await,
        Vec::<String>::new()
    );
    assert_eq!(
        names(&store, &p("ab"), Some(&p("zzz")), 100).await,
        Vec::<String>::new()
    );
    assert_eq!(names(&store, &p("ab"), None, 0).await, Vec::<String>::new());
    assert_eq!(
        names(&store, &p("ab"), None, 2).await,
        under(&base, &["ab", "ab/x"])
    );

    // The empty prefix lists every name: those after `base` start with it, all of ours.
    assert_eq!(names(&store, "", Some(&base), sorted.len()).await, sorted);
    assert_eq!(
        names(&store, "", Some(&p("é1")), 2).await,
        under(&base, &["ê", "日本"])
    );
}

/// `%`, `_` and `\` in a prefix are characters, not a pattern (PostgreSQL's `LIKE` would
/// read the first two as wildcards and the last as its escape).
pub async fn list_prefix_wildcards_are_literal(store: Arc<dyn Store>) {
    let base = format!("{}/", unique("list_wildcards"));
    let all = under(
        &base,
        &[
            "a%b", "axb", "a%", "a_c", "azc", "a\\b", "a\\\\b", "a.c", "a*c",
        ],
    );
    create(&store, &all).await;
    let p = |tail: &str| format!("{base}{tail}");
    assert_eq!(
        names(&store, &p("a%"), None, 100).await,
        under(&base, &["a%", "a%b"])
    );
    assert_eq!(names(&store, &p("a_"), None, 100).await, vec![p("a_c")]);
    assert_eq!(
        names(&store, &p("a\\"), None, 100).await,
        under(&base, &["a\\\\b", "a\\b"])
    );
    assert_eq!(names(&store, &p("a."), None, 100).await, vec![p("a.c")]);
    assert_eq!(names(&store, &p("a*"), None, 100).await, vec![p("a*c")]);
}

/// Paging with each page's last name as the next cursor gives every live record once, in
/// order, whatever the page size; tombstones are never listed (re-created records are),
/// and a page is full whenever live records remain, however many tombstones lie between.
pub async fn list_pages_give_every_live_record_once(store: Arc<dyn Store>) {
    let base = format!("{}/", unique("list_pages"));
    let all: Vec<String> = (0..40).map(|i| format!("{base}r{i:02}")).collect();
    create(&store, &all).await;
    // Deleted: every third; deleted and re-created: every ninth; a run of deletes.
    let deleted: Vec<&String> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 0 || (20..30).contains(i))
        .map(|(_, n)| n)
        .collect();
    commit_ok(&store, deleted.iter().map(|n| delete(n, 2)).collect()).await;
    let recreated: Vec<&String> = all.iter().step_by(9).collect();
    commit_ok(
        &store,
        recreated.iter().map(|n| recreate(n, 2, 4)).collect(),
    )
    .await;
    let live: Vec<String> = all
        .iter()
        .filter(|n| !deleted.contains(n) || recreated.contains(n))
        .cloned()
        .collect();
    assert!(live.len() > 10 && live.len() < all.len());

    for page in [1, 2, 3, 7, live.len(), 100] {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let names = names(&store, &base, after.as_deref(), page).await;
            assert!(names.len() <= page);
            seen.extend(names.iter().cloned());
            if names.len() < page {
                break;
            }
            after = names.last().cloned();
        }
        assert_eq!(seen, live, "pages of {page}");
    }
    // Versions are the current ones: a re-created record is at 4.
    let first = store.list(&base, None, 1).await.unwrap();
    assert_eq!(
        (first[0].name.as_str(), first[0].version),
        (all[0].as_str(), 4)
    );
}
