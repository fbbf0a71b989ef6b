//! Transforming whole ops from a rule for single components: the N×M algorithm ot-json0
//! and text0 share (ot-json0's `lib/bootstrapTransform.js`).
//!
//! Each component of the right op is carried through the components of the left op in
//! turn; each step transforms the left component by the right one and the right one by
//! the left one. A right component may split in two on the way (a text delete around an
//! insert): the rest of the left op is then transformed against the pieces, the way
//! ot-json0 recurses. Here the recursion is a loop over an explicit stack, so that a long
//! op cannot overflow the thread's stack. Results are built with the type's `append`,
//! which merges neighbouring components exactly as ot-json0's does, so results match it
//! component for component.

use super::error::Json0Error;
use super::op::Side;

/// A component type's transform rules: what [`transform`] needs.
pub(super) trait Rules {
    type Component: Clone;

    /// Appends `c` transformed against the concurrent `other` to `dest`: nothing, one
    /// component, or several.
    fn transform_component(
        &self,
        dest: &mut Vec<Self::Component>,
        c: &Self::Component,
        other: &Self::Component,
        side: Side,
    ) -> Result<(), Json0Error>;

    /// Appends `c` to `op`, merged into its last component where the type merges them.
    fn append(&self, op: &mut Vec<Self::Component>, c: Self::Component) -> Result<(), Json0Error>;
}

/// `op` transformed against the concurrent `other`, winning ties if `side` is
/// [`Side::Left`]: ot-json0's `transform(op, otherOp, side)`.
pub(super) fn transform<R: Rules>(
    rules: &R,
    op: &[R::Component],
    other: &[R::Component],
    side: Side,
) -> Result<Vec<R::Component>, Json0Error> {
    if other.is_empty() {
        return Ok(op.to_vec());
    }
    if let ([c], [o]) = (op, other) {
        let mut dest = Vec::new();
        rules.transform_component(&mut dest, c, o, side)?;
        return Ok(dest);
    }
    Ok(match side {
        Side::Left => transform_x(rules, op.to_vec(), other.to_vec())?.0,
        Side::Right => transform_x(rules, other.to_vec(), op.to_vec())?.1,
    })
}

/// Both ops transformed against each other: `left` (which wins ties) against `right`, and
/// `right` against `left`. ot-json0's `transformX`.
pub(super) fn transform_x<R: Rules>(
    rules: &R,
    left: Vec<R::Component>,
    right: Vec<R::Component>,
) -> Result<Pair<R::Component>, Json0Error> {
    // `frame` is the level being worked on; `stack` holds the levels that split above it.
    let mut frame = Frame::new(left, right);
    let mut stack: Vec<Frame<R::Component>> = Vec::new();
    loop {
        let Some(first) = frame.right.get(frame.next).cloned() else {
            // Every right component is through: hand the results to the level that split.
            let Some(mut parent) = stack.pop() else {
                return Ok((frame.left, frame.new_right));
            };
            for c in frame.left {
                rules.append(&mut parent.new_left, c)?;
            }
            for c in frame.new_right {
                rules.append(&mut parent.new_right, c)?;
            }
            parent.left = std::mem::take(&mut parent.new_left);
            parent.next += 1;
            frame = parent;
            continue;
        };

        // Carry the right component through the left op.
        let mut rc = Some(first);
        let mut new_left = Vec::new();
        let mut split = None;
        let mut k = 0;
        while let (Some(l), Some(r)) = (frame.left.get(k), rc.as_ref()) {
            let mut next = Vec::new();
            rules.transform_component(&mut new_left, l, r, Side::Left)?;
            rules.transform_component(&mut next, r, l, Side::Right)?;
            k += 1;
            match next.len() {
                1 => rc = next.pop(),
                0 => {
                    // The right component is gone: the rest of the left op is unchanged.
                    for c in frame.left.iter().skip(k) {
                        rules.append(&mut new_left, c.clone())?;
                    }
                    rc = None;
                }
                _ => {
                    split = Some(next);
                    rc = None;
                }
            }
        }
        match split {
            Some(pieces) => {
                let rest = frame.left.get(k..).unwrap_or_default().to_vec();
                frame.new_left = new_left;
                let child = Frame::new(rest, pieces);
                stack.push(std::mem::replace(&mut frame, child));
            }
            None => {
                if let Some(r) = rc {
                    rules.append(&mut frame.new_right, r)?;
                }
                frame.left = new_left;
                frame.next += 1;
            }
        }
    }
}

/// Two ops: the left one and the right one.
pub(super) type Pair<C> = (Vec<C>, Vec<C>);

/// One level of ot-json0's recursion: `left` is transformed against `right[next..]`.
struct Frame<C> {
    /// The left op, transformed against the right components before `next`.
    left: Vec<C>,
    right: Vec<C>,
    next: usize,
    /// The right components transformed so far.
    new_right: Vec<C>,
    /// While a split right component's pieces are carried (in the frame above): the left
    /// components transformed before the split.
    new_left: Vec<C>,
}

impl<C> Frame<C> {
    fn new(left: Vec<C>, right: Vec<C>) -> Frame<C> {
        Frame {
            left,
            right,
            next: 0,
            new_right: Vec::new(),
            new_left: Vec::new(),
        }
    }
}
