//! Random sequences of what commits do to a free space, checking the two ways it keeps
//! its changes: a roll back restores the state of the checkpoint exactly, and the delta
//! stored against a base, decoded and applied to the decoded base, gives the state back.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

#[derive(Clone, Debug)]
enum Step {
    Allocate(u64),
    Free(usize),
    Defer(usize, bool),
    NoteWritten(usize),
    Release {
        floor_back: u64,
        durable_back: u64,
    },
    ClearRecent,
    Trim,
    /// Store the state whole in an extent of its own: the new base.
    Rebase,
    /// Store the delta, and check it; a new revision begins.
    Publish,
    Checkpoint,
    RollBack,
    KeepChanges,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (1u64..4).prop_map(Step::Allocate),
        3 => any::<usize>().prop_map(Step::Free),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(i, known)| Step::Defer(i, known)),
        2 => any::<usize>().prop_map(Step::NoteWritten),
        2 => (0u64..4, 0u64..4).prop_map(|(floor_back, durable_back)| Step::Release {
            floor_back,
            durable_back
        }),
        1 => Just(Step::ClearRecent),
        1 => Just(Step::Trim),
        1 => Just(Step::Rebase),
        3 => Just(Step::Publish),
        2 => Just(Step::Checkpoint),
        1 => Just(Step::RollBack),
        1 => Just(Step::KeepChanges),
    ]
}

/// Everything a roll back must restore: the state, its base, its changes since the base.
type Image = (FreeSpace, Option<Base>, Option<Vec<u8>>);

fn image(space: &FreeSpace) -> Image {
    let tracked = space.base().is_some() && space.delta_len() != usize::MAX;
    let delta = tracked.then(|| space.encode_delta().0);
    (space.clone(), space.base(), delta)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn roll_backs_restore_and_deltas_rebuild_the_state(
        steps in proptest::collection::vec(step(), 1..120)
    ) {
        const PAGE: usize = 4096;
        let mut space = FreeSpace::new(FIRST_DATA_PAGE);
        let mut revision = 1u64;
        // Extents in use, with the revision that wrote them.
        let mut live: Vec<(Extent, u64)> = Vec::new();
        // What a roll back must give back, and the live list then.
        let mut saved: Option<(Image, Vec<(Extent, u64)>)> = None;
        // By start and checksum: a base rolled back may have its pages reused by another.
        let mut bases: HashMap<(u64, u32), Vec<u8>> = HashMap::new();
        for step in steps {
            match step {
                Step::Allocate(pages) => {
                    let start = space.allocate(pages);
                    live.push((Extent::new(start, pages), revision));
                }
                Step::Free(i) if !live.is_empty() => {
                    let (extent, _) = live.remove(i % live.len());
                    space.free(extent);
                }
                Step::Defer(i, known) if !live.is_empty() => {
                    let (extent, born) = live.remove(i % live.len());
                    space.defer(revision, if known { born } else { 0 }, extent);
                }
                Step::NoteWritten(i) if !live.is_empty() => {
                    space.note_written(live[i % live.len()].0);
                }
                Step::Release { floor_back, durable_back } => {
                    let floor = revision.saturating_sub(floor_back);
                    space.release(&Kept::new(floor, floor.saturating_sub(durable_back)));
                }
                Step::ClearRecent => space.clear_recent(),
                // The engine trims only runs nothing uses, never one written since the
                // last durable commit; this model may free such runs directly.
                Step::Trim if space.recent().next().is_none() => {
                    space.trim();
                }
                Step::Rebase => {
                    if let Some(old) = space.base() {
                        space.defer(revision, old.born, old.extent);
                    }
                    space.set_base(None);
                    let pages = space.encoded_page_count(PAGE);
                    let start = space.allocate(pages);
                    let (bytes, checksum) = space.encode(PAGE, pages);
                    let extent = Extent::new(start, pages);
                    space.set_base(Some(Base { extent, checksum, born: revision }));
                    space.note_written(extent);
                    bases.insert((start.0, checksum), bytes);
                }
                Step::Publish => {
                    if let Some(base) = space.base().filter(|_| space.delta_len() != usize::MAX) {
                        let (bytes, checksum) = space.encode_delta();
                        prop_assert_eq!(bytes.len(), space.delta_len());
                        let Stored::Delta(delta) =
                            FreeSpace::decode(PageId(1), &bytes, checksum).unwrap()
                        else {
                            panic!("a delta decoded as a whole state");
                        };
                        prop_assert_eq!(delta.base(), base);
                        let base_bytes = &bases[&(base.extent.start.0, base.checksum)];
                        let whole = FreeSpace::decode(base.extent.start, base_bytes, base.checksum)
                            .unwrap()
                            .into_whole(base.extent.start)
                            .unwrap();
                        let rebuilt = delta.apply(PageId(1), whole).unwrap();
                        prop_assert_eq!(image(&rebuilt), image(&space));
                    } else if space.base().is_none() {
                        let (bytes, checksum) = space.encode_inline();
                        let back = FreeSpace::decode(PageId(1), &bytes, checksum)
                            .unwrap()
                            .into_whole(PageId(1))
                            .unwrap();
                        prop_assert_eq!(&back, &space);
                    }
                    revision += 1;
                }
                Step::Checkpoint => {
                    space.checkpoint();
                    saved = Some((image(&space), live.clone()));
                }
                Step::RollBack => {
                    space.roll_back();
                    if let Some((before, before_live)) = saved.take() {
                        prop_assert_eq!(image(&space), before);
                        live = before_live;
                    }
                }
                Step::KeepChanges => {
                    space.keep_changes();
                    saved = None;
                }
                _ => {}
            }
        }
    }
}
