//! The generator's plumbing: a seeded random source, generated names, and [`Sim`], which
//! decides each command against its own copy of the streams' states and packs the events into
//! appends kept in flight, so the log is valid by construction and written in large batches.

use super::*;

/// SplitMix64: a tiny, well-distributed deterministic generator (no dependency needed for a
/// simulation that only has to be reproducible).
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub(super) fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    pub(super) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    pub(super) fn uuid(&mut self) -> Uuid {
        let hi = u128::from(self.next());
        let lo = u128::from(self.next());
        // Version-4 and variant bits, so the ids look like any other random UUID.
        let v = (hi << 64 | lo) & !(0xF000u128 << 64) | (0x4000u128 << 64);
        Uuid::from_u128(v & !(0xC000u128 << 48) | (0x8000u128 << 48))
    }
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭",
];
const GIVEN: &[&str] = &[
    "建国", "秀英", "志强", "美芳", "国华", "丽娟", "伟", "静", "海燕", "明", "红梅", "永康",
    "金花", "德胜", "桂芳", "立新", "春生", "雪梅", "文斌", "玉兰",
];

/// The generator's copy of the domain state, the stores' view of stream versions, and the
/// appends not yet sent.
pub(super) struct Sim {
    pub(super) store: Arc<dyn EventStore>,
    pub(super) keys: Arc<KeyRing>,
    pub(super) policy: Policy,
    pub(super) actor: Uuid,
    pub(super) rng: Rng,
    pub(super) states: HashMap<StreamName, Folded>,
    pub(super) pending: Vec<StreamAppend>,
    pub(super) index: HashMap<String, usize>,
    pub(super) flushed: u64,
    pub(super) events: u64,
    pub(super) commands: u64,
    pub(super) rejected: BTreeMap<String, u64>,
}

/// A stream as the simulation has folded it: its version (its event count) and state.
pub(super) struct Folded {
    pub(super) version: u64,
    pub(super) state: State,
}

impl Sim {
    pub(super) fn state(&self, s: &StreamName) -> State {
        self.states
            .get(s)
            .map(|f| f.state.clone())
            .unwrap_or_else(|| State::initial(s.category))
    }

    /// Decides `cmd` as of `today`; stores its events (sealed) in the pending batch.
    pub(super) async fn run(&mut self, cmd: Command, today: NaiveDate) -> Result<bool> {
        let mut states = States::new();
        loop {
            let wanted: Vec<StreamName> = streams_to_load(&cmd, &states)
                .into_iter()
                .filter(|s| !states.contains(s))
                .collect();
            if wanted.is_empty() {
                break;
            }
            for s in wanted {
                let st = self.state(&s);
                states.insert(s, st);
            }
        }
        let ctx = Context {
            today,
            actor: Actor {
                id: self.actor,
                director: None,
            },
            policy: &self.policy,
        };
        let decision = match decide(&states, &cmd, &ctx) {
            Ok(d) => d,
            Err(r) => {
                *self.rejected.entry(r.code().to_owned()).or_default() += 1;
                return Ok(false);
            }
        };
        let mut appends: Vec<StreamAppend> = Vec::new();
        for (stream, mut event) in decision {
            let entry = self.states.entry(stream).or_insert_with(|| Folded {
                version: 0,
                state: State::initial(stream.category),
            });
            let before = entry.version;
            entry.state = evolve(
                std::mem::replace(&mut entry.state, State::initial(stream.category)),
                &event,
            );
            entry.version += 1;
            let event_id = self.rng.uuid();
            caretrail_app::seal_event(&self.keys, &mut event, event_id).await?;
            let data = event.to_data().map_err(|e| {
                ProjectionError::Generator(format!("event does not serialise: {e}"))
            })?;
            let new = NewEvent {
                event_id,
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                data: data.to_string(),
                business_date: event.business_date(),
            };
            let id = StreamId::new(stream.to_string())?;
            match appends.iter_mut().find(|a| a.stream == id) {
                Some(a) => a.events.push(new),
                None => appends.push(StreamAppend {
                    stream: id,
                    expected: ExpectedVersion::Exact(before),
                    events: vec![new],
                }),
            }
            self.events += 1;
        }
        self.commands += 1;
        // Merge into the pending append: a stream already in it gets the new events after its
        // earlier ones (its expected version stays the one before the first), so every
        // stream's order is the decision order.
        for a in appends {
            match self.index.get(a.stream.as_str()) {
                Some(&i) => self.pending[i].events.extend(a.events),
                None => {
                    self.index
                        .insert(a.stream.as_str().to_owned(), self.pending.len());
                    self.pending.push(a);
                }
            }
        }
        if self.events - self.flushed >= 4_000 {
            self.flush().await?;
        }
        Ok(true)
    }

    /// Appends everything pending as one atomic append: one transaction and one sync for
    /// thousands of events. (Separate appends in flight at once may reach the writer in any
    /// order, which would break the expected versions.)
    pub(super) async fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let streams = std::mem::take(&mut self.pending);
        self.index.clear();
        self.flushed = self.events;
        let command_id = self.rng.uuid();
        self.store
            .append(AppendRequest {
                streams,
                metadata: Metadata {
                    actor_id: self.actor.to_string(),
                    actor_role: "admin".into(),
                    command_id: Some(command_id),
                    correlation_id: Some(command_id),
                    causation_id: None,
                },
            })
            .await?;
        Ok(())
    }
}

pub(super) fn name(rng: &mut Rng) -> Personal {
    let s = SURNAMES[rng.below(SURNAMES.len() as u64) as usize];
    let g = GIVEN[rng.below(GIVEN.len() as u64) as usize];
    Personal::plain(format!("{s}{g}"))
}
