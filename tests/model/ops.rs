//! The operations of the state machines and the proptest strategies that generate them.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

use crate::data::{Data, Edit, SettingsSpec, Val};

#[derive(Clone, Debug)]
pub enum AddContent {
    /// Whole-channel data; chunk `i` gets `specs[i % len]`.
    Data(Vec<Data>),
    /// `add_lazy_channel` with this fill value.
    Lazy(Val),
}

#[derive(Clone, Debug)]
pub struct AddSpec {
    pub content: AddContent,
    pub name: Option<String>,
    pub settings: SettingsSpec,
}

#[derive(Clone, Debug)]
pub enum BadWrite {
    WrongLen { idx: Index, delta: i8 },
    OutOfRange { extra: u8 },
}

#[derive(Clone, Debug)]
pub enum SettingsFault {
    Level(u8),
    BlockTooBig,
}

/// Calls that must fail and change nothing.
#[derive(Clone, Debug)]
pub enum Bad {
    WrongLen { ch: Index, idx: Index, delta: i8 },
    OutOfRange { ch: Index, extra: u8 },
    ReadWrongLen { ch: Index, idx: Index, delta: i8 },
    Rows { ch: Index },
    ChannelOutOfRange { extra: u8 },
    AddWrongLen { delta: i8, name: Option<String> },
    Settings { kind: SettingsFault, lazy: bool },
    NamesWrongCount { more: bool },
    UnknownName(String),
    SecondWriter,
    ReaderWrites,
    WrongDtype,
    ZeroThreads,
}

#[derive(Clone, Debug)]
pub enum Op {
    SetChunk {
        ch: Index,
        idx: Index,
        data: Data,
    },
    SetLastChunk {
        ch: Index,
        data: Data,
    },
    Batch {
        ch: Index,
        writes: Vec<(Index, Data)>,
        bad: Option<BadWrite>,
        probe: bool,
        commit: bool,
    },
    Update {
        ch: Index,
        mask: u64,
        edits: Vec<Edit>,
        fail_at: Option<Index>,
    },
    Add(AddSpec),
    Remove {
        ch: Index,
    },
    RemoveByName {
        pick: Option<Index>,
        name: String,
    },
    SetNames(Vec<String>),
    SetMetadata(Value),
    ReadRows {
        ch: Index,
        first: Index,
        count: usize,
    },
    Sync,
    Reopen,
    OpenReader,
    RefreshReader,
    Compact,
    SaveAs {
        rw: bool,
    },
    SaveChannelAs {
        ch: Index,
    },
    Durability {
        immediate: bool,
    },
    AutoCompact {
        on: bool,
    },
    Invalid(Bad),
}

/// What an operation does to the file's generation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Gen {
    /// No commit: the generation stays.
    Same,
    /// A commit: the generation grows.
    Grows,
    /// It may grow (a sync or an open may write a marker slot).
    Any,
}

pub fn val_strategy() -> BoxedStrategy<Val> {
    prop_oneof![
        3 => any::<Index>().prop_map(Val::Special),
        1 => any::<u64>().prop_map(Val::Bits),
    ]
    .boxed()
}

pub fn data_strategy() -> BoxedStrategy<Data> {
    prop_oneof![
        3 => any::<u64>().prop_map(Data::Noise),
        2 => any::<u64>().prop_map(Data::Smooth),
        2 => any::<u64>().prop_map(Data::Specials),
        3 => val_strategy().prop_map(Data::Const),
        2 => (val_strategy(), val_strategy(), any::<Index>())
            .prop_map(|(base, other, at)| Data::OneOff { base, other, at }),
    ]
    .boxed()
}

pub fn edit_strategy() -> BoxedStrategy<Edit> {
    prop_oneof![
        2 => data_strategy().prop_map(Edit::Replace),
        2 => (any::<Index>(), val_strategy()).prop_map(|(at, val)| Edit::Poke { at, val }),
        1 => Just(Edit::Touch),
    ]
    .boxed()
}

pub fn settings_strategy() -> BoxedStrategy<SettingsSpec> {
    (
        any::<Index>(),
        0u8..=9,
        any::<Index>(),
        0usize..=24,
        0usize..64,
    )
        .prop_map(|(codec, level, block, rows, extra)| SettingsSpec {
            codec,
            level,
            block,
            rows,
            extra,
        })
        .boxed()
}

/// Short names from a tiny alphabet, so that empty and repeated names are common.
pub fn name_strategy() -> BoxedStrategy<String> {
    "[aé ]{0,2}".boxed()
}

pub fn add_strategy() -> BoxedStrategy<AddSpec> {
    (
        prop_oneof![
            3 => prop::collection::vec(data_strategy(), 1..4).prop_map(AddContent::Data),
            1 => val_strategy().prop_map(AddContent::Lazy),
        ],
        prop::option::of(name_strategy()),
        settings_strategy(),
    )
        .prop_map(|(content, name, settings)| AddSpec {
            content,
            name,
            settings,
        })
        .boxed()
}

/// Small JSON values. Numbers are integers or eighths, which every JSON parser reads back
/// exactly.
pub fn json_strategy() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<u64>().prop_map(|u| json!(u)),
        (-8000i32..8000).prop_map(|k| json!(f64::from(k) / 8.0)),
        "(\\PC|[\\x00-\\x1f\"\\\\]){0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z\"]{0,3}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

pub fn delta_strategy() -> BoxedStrategy<i8> {
    prop_oneof![-3i8..0, 1i8..=3].boxed()
}

pub fn settings_fault_strategy() -> BoxedStrategy<SettingsFault> {
    prop_oneof![
        2 => (10u8..=255).prop_map(SettingsFault::Level),
        1 => Just(SettingsFault::BlockTooBig),
    ]
    .boxed()
}

pub fn bad_strategy(image: bool) -> BoxedStrategy<Bad> {
    let common = prop_oneof![
        (any::<Index>(), any::<Index>(), delta_strategy())
            .prop_map(|(ch, idx, delta)| Bad::WrongLen { ch, idx, delta }),
        (any::<Index>(), 0u8..3).prop_map(|(ch, extra)| Bad::OutOfRange { ch, extra }),
        (any::<Index>(), any::<Index>(), delta_strategy())
            .prop_map(|(ch, idx, delta)| Bad::ReadWrongLen { ch, idx, delta }),
        any::<Index>().prop_map(|ch| Bad::Rows { ch }),
        (settings_fault_strategy(), any::<bool>())
            .prop_map(|(kind, lazy)| Bad::Settings { kind, lazy }),
        Just(Bad::SecondWriter),
        Just(Bad::ReaderWrites),
        Just(Bad::WrongDtype),
        Just(Bad::ZeroThreads),
    ];
    if !image {
        return common.boxed();
    }
    prop_oneof![
        9 => common,
        1 => (0u8..3).prop_map(|extra| Bad::ChannelOutOfRange { extra }),
        1 => (delta_strategy(), prop::option::of(name_strategy()))
            .prop_map(|(delta, name)| Bad::AddWrongLen { delta, name }),
        1 => any::<bool>().prop_map(|more| Bad::NamesWrongCount { more }),
        1 => name_strategy().prop_map(Bad::UnknownName),
    ]
    .boxed()
}

pub fn op_strategy(image: bool) -> BoxedStrategy<Op> {
    let idx = || any::<Index>();
    let mut arms: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (
            8,
            (idx(), idx(), data_strategy())
                .prop_map(|(ch, idx, data)| Op::SetChunk { ch, idx, data })
                .boxed(),
        ),
        (
            2,
            (idx(), data_strategy())
                .prop_map(|(ch, data)| Op::SetLastChunk { ch, data })
                .boxed(),
        ),
        (
            4,
            (
                idx(),
                prop::collection::vec((idx(), data_strategy()), 0..6),
                prop::option::weighted(
                    0.2,
                    prop_oneof![
                        (idx(), delta_strategy())
                            .prop_map(|(idx, delta)| BadWrite::WrongLen { idx, delta }),
                        (0u8..3).prop_map(|extra| BadWrite::OutOfRange { extra }),
                    ],
                ),
                prop::bool::weighted(0.3),
                prop::bool::weighted(0.8),
            )
                .prop_map(|(ch, writes, bad, probe, commit)| Op::Batch {
                    ch,
                    writes,
                    bad,
                    probe,
                    commit,
                })
                .boxed(),
        ),
        (
            3,
            (
                idx(),
                any::<u64>(),
                prop::collection::vec(edit_strategy(), 1..3),
                prop::option::weighted(0.15, idx()),
            )
                .prop_map(|(ch, mask, edits, fail_at)| Op::Update {
                    ch,
                    mask,
                    edits,
                    fail_at,
                })
                .boxed(),
        ),
        (
            2,
            (idx(), idx(), 0usize..=22)
                .prop_map(|(ch, first, count)| Op::ReadRows { ch, first, count })
                .boxed(),
        ),
        (1, Just(Op::Sync).boxed()),
        (2, Just(Op::Reopen).boxed()),
        (2, Just(Op::OpenReader).boxed()),
        (2, Just(Op::RefreshReader).boxed()),
        (2, Just(Op::Compact).boxed()),
        (1, any::<bool>().prop_map(|rw| Op::SaveAs { rw }).boxed()),
        (
            1,
            any::<bool>()
                .prop_map(|immediate| Op::Durability { immediate })
                .boxed(),
        ),
        (
            1,
            prop::bool::weighted(0.3)
                .prop_map(|on| Op::AutoCompact { on })
                .boxed(),
        ),
        (4, bad_strategy(image).prop_map(Op::Invalid).boxed()),
    ];
    if image {
        arms.extend([
            (3, add_strategy().prop_map(Op::Add).boxed()),
            (2, idx().prop_map(|ch| Op::Remove { ch }).boxed()),
            (
                1,
                (prop::option::of(idx()), name_strategy())
                    .prop_map(|(pick, name)| Op::RemoveByName { pick, name })
                    .boxed(),
            ),
            (
                2,
                prop::collection::vec(name_strategy(), 0..5)
                    .prop_map(Op::SetNames)
                    .boxed(),
            ),
            (2, json_strategy().prop_map(Op::SetMetadata).boxed()),
            (1, idx().prop_map(|ch| Op::SaveChannelAs { ch }).boxed()),
        ]);
    }
    proptest::strategy::Union::new_weighted(arms).boxed()
}

#[derive(Clone, Debug)]
pub struct ImageCase {
    pub width: usize,
    pub height: usize,
    pub file: bool,
    /// Build the initial channels with `Image::from_channels` (anonymous images only).
    pub from_channels: bool,
    pub initial: Vec<AddSpec>,
    pub ops: Vec<Op>,
}

#[derive(Clone, Debug)]
pub enum Init {
    Data(Vec<Data>),
    Full(Val),
    Zeros,
}

#[derive(Clone, Debug)]
pub struct ChannelCase {
    pub width: usize,
    pub height: usize,
    pub file: bool,
    pub settings: SettingsSpec,
    pub init: Init,
    pub ops: Vec<Op>,
}

pub fn image_case() -> impl Strategy<Value = ImageCase> {
    (
        1usize..=20,
        1usize..=20,
        any::<bool>(),
        prop::bool::weighted(0.25),
        prop::collection::vec(add_strategy(), 0..=3),
        prop::collection::vec(op_strategy(true), 1..=40),
    )
        .prop_map(
            |(width, height, file, from_channels, initial, ops)| ImageCase {
                width,
                height,
                file,
                from_channels,
                initial,
                ops,
            },
        )
}

pub fn channel_case() -> impl Strategy<Value = ChannelCase> {
    (
        1usize..=20,
        1usize..=20,
        any::<bool>(),
        settings_strategy(),
        prop_oneof![
            3 => prop::collection::vec(data_strategy(), 1..4).prop_map(Init::Data),
            1 => val_strategy().prop_map(Init::Full),
            1 => Just(Init::Zeros),
        ],
        prop::collection::vec(op_strategy(false), 1..=40),
    )
        .prop_map(|(width, height, file, settings, init, ops)| ChannelCase {
            width,
            height,
            file,
            settings,
            init,
            ops,
        })
}
