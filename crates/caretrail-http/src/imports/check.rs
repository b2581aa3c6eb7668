//! A preview's checks of every row (`check`): the domain's parser, duplicates within the file,
//! resident ID numbers already registered (compared as HMAC tags under a key that lives only
//! as long as the preview), and the domain's own decision on the current state (`dry_run`),
//! which also names the people whose data a row's command would seal. Nothing is sealed or
//! written here.

// The parent's types and imports: this is the preview's half of `imports`, split off by size.
use super::*;

/// A row after reading: its number and its command body or its problems.
pub(super) type ParsedRow = (u32, Result<roster::Parsed, Vec<Problem>>);

/// Checks every row; answers each row's report and, for a row to commit, its command body.
pub(super) async fn check(
    state: &AppState,
    actor: Uuid,
    kind: Kind,
    file: &[u8; 32],
    parsed: Vec<ParsedRow>,
) -> ApiResult<Vec<Checked>> {
    let name = kind.command();
    // The comparison key of this preview's ID number tags: random, in memory, dropped with it.
    let mut key = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut key[..]).map_err(|e| ApiError::internal(&e))?;
    let tag = |number: &str| -> [u8; 32] {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&key[..])
            .expect("HMAC takes keys of any length");
        mac.update(b"caretrail.import.id-number.v1\0");
        mac.update(number.as_bytes());
        mac.finalize().into_bytes().into()
    };

    let wants_registered = parsed
        .iter()
        .any(|(_, r)| r.as_ref().is_ok_and(|p| p.id_number.is_some()));
    let registered = if wants_registered {
        registered_id_numbers(state, &tag).await?
    } else {
        HashMap::new()
    };

    let mut rows: Vec<(RowReport, Option<Value>)> = Vec::with_capacity(parsed.len());
    let mut seen_subject: HashMap<Uuid, u32> = HashMap::new();
    let mut seen_number: HashMap<[u8; 32], u32> = HashMap::new();
    let mut seen_director: HashMap<Uuid, u32> = HashMap::new();
    let mut seen_worker: HashMap<Uuid, u32> = HashMap::new();
    let mut commands: Vec<Option<Command>> = Vec::with_capacity(parsed.len());
    for (row, result) in parsed {
        let mut report = RowReport {
            row,
            status: RowStatus::Valid,
            record_id: None,
            problems: Vec::new(),
        };
        let parsed = match result {
            Ok(p) => p,
            Err(problems) => {
                report.status = RowStatus::Invalid;
                report.problems = problems;
                rows.push((report, None));
                commands.push(None);
                continue;
            }
        };
        report.record_id = Some(parsed.subject);
        let twice = |first: u32, column: &'static str, what: &str, what_zh: &str| {
            Problem::at(
                column,
                "import_duplicate_in_file",
                format!("the same {what} as row {first}"),
                format!("与第 {first} 行的{what_zh}相同"),
            )
        };
        let id_col = kind.id_column();
        if let Some(first) = seen_subject.insert(parsed.subject, row) {
            report.problems.push(twice(first, id_col, "id", "编号"));
            seen_subject.insert(parsed.subject, first);
        }
        if let Some(number) = &parsed.id_number {
            let t = tag(number.as_str());
            match seen_number.get(&t) {
                Some(first) => {
                    report.problems.push(twice(
                        *first,
                        "id_number",
                        "resident ID number",
                        "身份证号",
                    ));
                }
                None => {
                    seen_number.insert(t, row);
                }
            }
            if let Some(existing) = registered.get(&t)
                && *existing != parsed.subject
            {
                report.problems.push(Problem::at(
                    "id_number",
                    "import_id_number_registered",
                    format!("a model worker with this resident ID number is registered already ({existing})"),
                    format!("该身份证号已登记（劳模编号 {existing}）"),
                ));
            }
        }
        if let Some((director, worker)) = parsed.pair {
            if let Some(first) = seen_director.get(&director) {
                report
                    .problems
                    .push(twice(*first, "director_id", "director", "理事"));
            } else {
                seen_director.insert(director, row);
            }
            if let Some(first) = seen_worker.get(&worker) {
                report
                    .problems
                    .push(twice(*first, "model_worker_id", "model worker", "劳模"));
            } else {
                seen_worker.insert(worker, row);
            }
        }
        // The domain's parser judges the body exactly as it judges a command sent by hand.
        let command = match Command::parse(name, parsed.body.clone()) {
            Ok(c) => Some(c),
            Err(CommandParseError::InvalidBody { field, message }) => {
                report.problems.push(Problem {
                    column: None,
                    code: "validation_failed".into(),
                    message: format!("{field}: {message}"),
                    message_zh: format!("字段 {field} 不符合要求：{message}"),
                });
                None
            }
            Err(CommandParseError::UnknownCommand) => {
                return Err(ApiError::internal(&"an import kind names no command"));
            }
        };
        if !report.problems.is_empty() {
            report.status = RowStatus::Invalid;
        }
        commands.push(command);
        rows.push((report, Some(parsed.body)));
    }

    // The domain's decision on the current state, for every row still valid: nothing is
    // sealed or written.
    let app = &state.app;
    let now = app.clock().now();
    let policy = app.policy();
    let decisions: Vec<Option<Decided>> = futures::stream::iter(
        // Collected first: a stream whose type holds the closure over borrowed rows is
        // not provably `Send` for every lifetime (rustc's higher-ranked inference).
        rows.iter()
            .zip(&commands)
            .map(|((report, _), command)| async move {
                let command = command.as_ref()?;
                if report.status != RowStatus::Valid {
                    return None;
                }
                Some(dry_run(app, actor, policy, now, command).await)
            })
            .collect::<Vec<_>>(),
    )
    .buffered(CHECK_CONCURRENCY)
    .collect()
    .await;
    let mut checked = Vec::with_capacity(rows.len());
    for ((mut report, mut body), decision) in rows.into_iter().zip(decisions) {
        let mut subjects = Vec::new();
        match decision {
            None => {}
            Some(Ok(Ok(sealed_for))) => subjects = sealed_for,
            Some(Err(e)) => return Err(e),
            Some(Ok(Err(rejection))) => {
                // A refusal because this file's row was committed before is not a problem:
                // the commit replays it.
                let command_id = crate::commands::command_id_for(
                    actor,
                    &idempotency_key(file, kind, report.row),
                );
                if app.store().command_result(command_id).await?.is_some() {
                    report.status = RowStatus::AlreadyImported;
                } else {
                    report.status = RowStatus::Invalid;
                    report.problems.push(Problem {
                        column: None,
                        code: rejection.code().to_owned(),
                        message: rejection.to_string(),
                        message_zh: rejection.message_zh(),
                    });
                }
            }
        }
        if report.status == RowStatus::Invalid {
            body = None;
        }
        checked.push(Checked {
            report,
            body,
            subjects,
        });
    }
    Ok(checked)
}

/// A row after the preview's checks: its report, the command body to run (none for an
/// invalid row) and the people whose data that command seals.
pub(super) struct Checked {
    pub(super) report: RowReport,
    pub(super) body: Option<Value>,
    pub(super) subjects: Vec<Uuid>,
}

/// A row's decision on the current state (see [`dry_run`]).
type Decided = ApiResult<Result<Vec<Uuid>, caretrail_domain::Rejection>>;

/// Decides `command` on the current state as the command handler would, without sealing or
/// writing: `Ok(Err(_))` is the domain's refusal; otherwise the subjects whose personal
/// data the decided events would seal.
async fn dry_run(
    app: &caretrail_app::App,
    actor: Uuid,
    policy: &caretrail_domain::Policy,
    now: chrono::DateTime<chrono::Utc>,
    command: &Command,
) -> Decided {
    let mut states = States::new();
    loop {
        let wanted: Vec<StreamName> = streams_to_load(command, &states)
            .into_iter()
            .filter(|s| !states.contains(s))
            .collect();
        if wanted.is_empty() {
            break;
        }
        for stream in wanted {
            let (_, s) = app.state(&stream).await?;
            states.insert(stream, s);
        }
    }
    let ctx = Context {
        today: caretrail_app::shanghai_date(now),
        actor: Actor {
            id: actor,
            director: None,
        },
        policy,
    };
    Ok(decide(&states, command, &ctx).map(|decision| {
        let mut subjects = Vec::new();
        for (_, mut event) in decision {
            event.personal_fields_mut(&mut |r, _| subjects.push(r.subject));
        }
        subjects.sort_unstable();
        subjects.dedup();
        subjects
    }))
}

/// The tags of the resident ID numbers of registered model workers whose data is not erased,
/// each with the model worker's id. Every number is unsealed under its person's own key, tagged
/// and dropped; an erased person's number does not open.
async fn registered_id_numbers(
    state: &AppState,
    tag: &impl Fn(&str) -> [u8; 32],
) -> ApiResult<HashMap<[u8; 32], Uuid>> {
    let store = state.app.store();
    let keys = state.app.keys();
    let mut out = HashMap::new();
    let mut after = 0;
    loop {
        let page = store
            .read_log(&caretrail_store::LogQuery {
                after,
                up_to: None,
                filter: caretrail_store::EventFilter {
                    event_types: vec!["ModelWorkerRegistered".to_owned()],
                    categories: Vec::new(),
                },
                limit: 1000,
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in &page {
            let event = caretrail_app::to_domain(e)?;
            let caretrail_domain::Event::ModelWorkerRegistered(r) = event else {
                continue;
            };
            let Some(Personal::Sealed(sealed)) = &r.id_number else {
                continue;
            };
            let opened = keys
                .unseal(sealed, e.event_id)
                .await
                .map_err(|e| ApiError::unavailable_or_internal(e.is_unavailable(), &e))?;
            if let Some(number) = opened.map(Zeroizing::new) {
                out.insert(tag(number.as_str()), r.model_worker_id.uuid());
            }
        }
    }
    Ok(out)
}
