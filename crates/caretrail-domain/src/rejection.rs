//! Why a command was refused.
//!
//! One enum for the whole domain, because the HTTP layer maps every refusal the same way: a
//! stable snake_case [`Rejection::code`] that clients switch on, an English message
//! (`Display`) and a Chinese one ([`Rejection::message_zh`]). Messages name fields, never values,
//! so no personal data can leak into an error body or a log line. [`Rejection::kind`] says
//! whose fault a refusal is (the input, the state of the world, or the caller), which is all
//! the HTTP layer needs to pick a status.

/// A refused command. Each variant is one rule of `docs/domain.md` (section 6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The command handler did not load a stream the decision needs (a defect, not user error).
    #[error("the state of stream {stream} was not loaded before deciding")]
    StateNotLoaded {
        /// The stream name.
        stream: String,
    },
    /// A personal field in a command was not plain text (clients may not send ciphertext).
    #[error("personal field {field} must be plain text in a command")]
    PersonalDataNotPlain {
        /// The field.
        field: &'static str,
    },
    /// A required text field is empty.
    #[error("{field} must not be empty")]
    RequiredTextEmpty {
        /// The field.
        field: &'static str,
    },
    /// A business date lies after today.
    #[error("{field} must not be in the future")]
    DateInFuture {
        /// The field.
        field: &'static str,
    },
    /// A visit date lies after today.
    #[error("the visit date must not be in the future")]
    VisitDateInFuture,
    /// One gift's amount exceeds the policy's cap ([`crate::Policy::max_gift_fen`]).
    #[error("{field} exceeds the cap of {cap} yuan per gift")]
    GiftAmountAboveCap {
        /// The amount's field, e.g. `gifts[0].amount_fen`.
        field: String,
        /// The cap.
        cap: crate::money::Fen,
    },
    /// A sum of amounts does not fit in i64 fen.
    #[error("the total amount is too large")]
    AmountOverflow,
    /// The model worker id is already registered.
    #[error("this model worker is already registered")]
    ModelWorkerAlreadyRegistered,
    /// No model worker has this id.
    #[error("unknown model worker")]
    UnknownModelWorker,
    /// The model worker has died.
    #[error("the model worker is recorded as deceased")]
    ModelWorkerDeceased,
    /// The model worker is not (or no longer) in hardship.
    #[error("the model worker is not in hardship")]
    ModelWorkerNotInHardship,
    /// A hardship assessment names no cause.
    #[error("a hardship assessment needs at least one cause")]
    HardshipCausesEmpty,
    /// The director is already appointed for a term that has not ended.
    #[error("the director already holds a term that has not ended")]
    DirectorAlreadyAppointed,
    /// No director has this id.
    #[error("unknown director")]
    UnknownDirector,
    /// The director holds no term on the date.
    #[error("the director holds no term on that date")]
    DirectorNotInTerm,
    /// A term ends before it starts.
    #[error("a term must not end before it starts")]
    TermInvalid,
    /// A term end date is before the term's start.
    #[error("the term cannot end before it started")]
    TermEndBeforeStart,
    /// The body id is already registered.
    #[error("this body is already registered")]
    BodyAlreadyRegistered,
    /// No body has this id.
    #[error("unknown body")]
    UnknownBody,
    /// The pairing id is already used.
    #[error("this pairing already exists")]
    PairingAlreadyExists,
    /// No pairing has this id.
    #[error("unknown pairing")]
    UnknownPairing,
    /// Policy: the director already has an active pairing.
    #[error("the director already has an active pairing")]
    DirectorAlreadyPaired,
    /// Policy: the model worker already has an active pairing.
    #[error("the model worker already has an active pairing")]
    ModelWorkerAlreadyPaired,
    /// The new pairing would overlap an earlier pairing's period.
    #[error("the pairing period overlaps an earlier pairing")]
    PairingPeriodOverlaps,
    /// The visit policy is not usable (zero days, or a window not shorter than the maximum).
    #[error("the visit policy is invalid")]
    VisitPolicyInvalid,
    /// The pairing has already ended.
    #[error("the pairing has already ended")]
    PairingAlreadyEnded,
    /// A pairing cannot end before it started.
    #[error("the pairing cannot end before it started")]
    PairEndBeforeStart,
    /// Ending the pairing then would leave recorded visits or contacts outside it.
    #[error("the pairing cannot end before its last recorded visit or contact")]
    PairEndBeforeLastActivity,
    /// The pairing was not in force on the date.
    #[error("the pairing was not active on that date")]
    PairingNotActiveOnDate,
    /// The visit id is already used.
    #[error("this visit is already recorded")]
    VisitAlreadyRecorded,
    /// No visit has this id.
    #[error("unknown visit")]
    UnknownVisit,
    /// The visit (or pairing) belongs to another model worker.
    #[error("the visit or pairing belongs to another model worker")]
    VisitModelWorkerMismatch,
    /// A visit needs a pairing or an ad-hoc reason.
    #[error("a visit needs a pairing or an ad-hoc reason")]
    VisitNeedsPairingOrAdhocReason,
    /// A visit has both a pairing and an ad-hoc reason.
    #[error("a visit has either a pairing or an ad-hoc reason, not both")]
    VisitHasPairingAndAdhocReason,
    /// A visit lists no participant.
    #[error("a visit needs at least one participant")]
    VisitWithoutParticipants,
    /// A visit needs exactly one lead visitor.
    #[error("a visit needs exactly one lead visitor")]
    VisitNeedsOneLead,
    /// A visit recorded by a director is led by someone other than that director.
    #[error("a visit a director records must be led by that director")]
    VisitLeadNotActor,
    /// A director corrects or voids a visit another director led.
    #[error("a director may correct or void only the visits they led")]
    VisitNotLedByActor,
    /// A cash gift has no amount.
    #[error("a cash gift needs an amount in fen")]
    CashGiftWithoutAmount,
    /// The visit was voided.
    #[error("the visit was voided")]
    VisitVoided,
    /// A correction changes nothing.
    #[error("a correction must change at least one field")]
    CorrectionEmpty,
    /// The issue id is already used.
    #[error("this issue already exists")]
    IssueAlreadyRaised,
    /// No issue has this id.
    #[error("unknown issue")]
    UnknownIssue,
    /// The issue must be acknowledged first.
    #[error("the issue has not been acknowledged")]
    IssueNotAcknowledged,
    /// The issue is already acknowledged (or escalated).
    #[error("the issue is already acknowledged")]
    IssueAlreadyAcknowledged,
    /// The issue has not been escalated.
    #[error("the issue has not been escalated")]
    IssueNotEscalated,
    /// The issue is already resolved.
    #[error("the issue is already resolved")]
    IssueAlreadyResolved,
    /// The issue is not resolved.
    #[error("the issue is not resolved")]
    IssueNotResolved,
    /// The resolution is already confirmed.
    #[error("the resolution is already confirmed")]
    IssueAlreadyConfirmed,
    /// Closing needs the model worker's confirmation or an override reason.
    #[error("the resolution is not confirmed; closing needs an override reason")]
    IssueNotConfirmed,
    /// The issue is closed.
    #[error("the issue is closed")]
    IssueClosed,
    /// An issue date lies before the issue's previous step.
    #[error("the date lies before the issue's previous step")]
    IssueDateOutOfOrder,
    /// A due or respond-by date lies before the step's own date.
    #[error("the due date lies before the date of the step")]
    DueDateBeforeStep,
    /// The response comes from a body the issue is not escalated to.
    #[error("the issue is not escalated to that body")]
    BodyNotEscalatedTo,
    /// A redirect must name the new body; other responses must not.
    #[error("a redirect must name the body it goes to, other responses must not")]
    RedirectTargetInvalid,
    /// The contact id is already used.
    #[error("this contact is already recorded")]
    ContactAlreadyRecorded,
    /// The subject's data is already erased.
    #[error("the personal data of this subject is already erased")]
    PersonalDataAlreadyErased,
    /// A subscription filter names an event type or category that does not exist.
    #[error("{field} is not a known event type or stream category")]
    SubscriptionFilterUnknown {
        /// The entry, e.g. `filter.types[2]`.
        field: String,
    },
    /// A subscription filter lists too many types or categories.
    #[error("a filter lists at most 64 event types and 64 categories")]
    SubscriptionFilterTooLong,
    /// A webhook URL is not an `https://` (or `http://`) URL with a host, of at most 2,048 bytes.
    #[error("delivery.url must be an https:// URL with a host, at most 2048 bytes")]
    SubscriptionUrlInvalid,
    /// A webhook URL carries a user name or password, which would be written into the log.
    #[error("delivery.url must not contain credentials; the signature authenticates deliveries")]
    SubscriptionUrlCredentials,
    /// A NATS subject prefix is not dot-separated plain tokens.
    #[error("delivery.subject_prefix must be dot-separated tokens of letters, digits, '_' and '-'")]
    SubscriptionSubjectPrefixInvalid,
    /// A subscription's name is longer than 100 characters.
    #[error("name must be at most 100 characters")]
    SubscriptionNameTooLong,
    /// A rotated secret's grace period is longer than a week.
    #[error("grace_seconds must be at most 604800 (a week)")]
    SubscriptionGraceTooLong,
    /// The subscription id is taken.
    #[error("this subscription already exists")]
    SubscriptionAlreadyExists,
    /// No subscription has this id (or it was deleted).
    #[error("unknown subscription")]
    UnknownSubscription,
    /// The subscription is already paused.
    #[error("the subscription is already paused")]
    SubscriptionAlreadyPaused,
    /// The subscription is neither paused nor disabled.
    #[error("the subscription is not paused or disabled")]
    SubscriptionNotStopped,
    /// The subscription is already disabled.
    #[error("the subscription is already disabled")]
    SubscriptionAlreadyDisabled,
    /// Only webhook subscriptions have a signing secret.
    #[error("only webhook subscriptions have a signing secret")]
    SubscriptionHasNoSecret,
    /// The rotation's generation is not one more than the current secret's.
    #[error("the secret was rotated in the meantime; read the subscription and try again")]
    SubscriptionSecretGenerationStale,
    /// Accounts are for people: administrators, directors and auditors (integrations use
    /// tokens).
    #[error("an account's role must be admin, director or auditor")]
    AccountRoleNotAllowed,
    /// A director account needs the director it speaks for, and only a director account may
    /// name one.
    #[error("a director account needs director_id, and only a director account may have one")]
    AccountDirectorMismatch,
    /// The account id is taken.
    #[error("this account already exists")]
    AccountAlreadyExists,
    /// No account has this id.
    #[error("unknown account")]
    UnknownAccount,
    /// The account already has this role (and director).
    #[error("the account already has this role")]
    AccountRoleUnchanged,
    /// The account is already disabled.
    #[error("the account is already disabled")]
    AccountAlreadyDisabled,
    /// The account is not disabled.
    #[error("the account is not disabled")]
    AccountNotDisabled,
}

/// What a refusal says about the command: that its input is wrong whatever the world holds,
/// that the world does not allow it now, or that this caller may not do it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionKind {
    /// The command is malformed or contradicts itself: no state of the world would accept it
    /// as sent (HTTP 422).
    InvalidInput,
    /// A rule about the state of the world refuses it now: something does not exist, already
    /// exists, or is in the wrong step (HTTP 409).
    StateConflict,
    /// The caller may not do this to this record, although another caller may (HTTP 403).
    NotPermitted,
}

impl Rejection {
    /// What kind of refusal this is.
    pub fn kind(&self) -> RejectionKind {
        use Rejection::*;
        use RejectionKind::*;
        match self {
            PersonalDataNotPlain { .. }
            | RequiredTextEmpty { .. }
            | DateInFuture { .. }
            | VisitDateInFuture
            | AmountOverflow
            | GiftAmountAboveCap { .. }
            | HardshipCausesEmpty
            | TermInvalid
            | TermEndBeforeStart
            | VisitPolicyInvalid
            | VisitNeedsPairingOrAdhocReason
            | VisitHasPairingAndAdhocReason
            | VisitWithoutParticipants
            | VisitNeedsOneLead
            // The command itself names someone else as the lead of the caller's visit.
            | VisitLeadNotActor
            | CashGiftWithoutAmount
            | CorrectionEmpty
            | SubscriptionFilterUnknown { .. }
            | SubscriptionFilterTooLong
            | SubscriptionUrlInvalid
            | SubscriptionUrlCredentials
            | SubscriptionSubjectPrefixInvalid
            | SubscriptionNameTooLong
            | SubscriptionGraceTooLong
            | AccountRoleNotAllowed
            | AccountDirectorMismatch => InvalidInput,
            // The visit exists and is the caller's pairing's, but another director led it.
            VisitNotLedByActor => NotPermitted,
            // A defect of the command handler rather than a rule; it has always answered as a
            // refusal by the state it found.
            StateNotLoaded { .. }
            | ModelWorkerAlreadyRegistered
            | UnknownModelWorker
            | ModelWorkerDeceased
            | ModelWorkerNotInHardship
            | DirectorAlreadyAppointed
            | UnknownDirector
            | DirectorNotInTerm
            | BodyAlreadyRegistered
            | UnknownBody
            | PairingAlreadyExists
            | UnknownPairing
            | DirectorAlreadyPaired
            | ModelWorkerAlreadyPaired
            | PairingPeriodOverlaps
            | PairingAlreadyEnded
            | PairEndBeforeStart
            | PairEndBeforeLastActivity
            | PairingNotActiveOnDate
            | VisitAlreadyRecorded
            | UnknownVisit
            | VisitModelWorkerMismatch
            | VisitVoided
            | IssueAlreadyRaised
            | UnknownIssue
            | IssueNotAcknowledged
            | IssueAlreadyAcknowledged
            | IssueNotEscalated
            | IssueAlreadyResolved
            | IssueNotResolved
            | IssueAlreadyConfirmed
            | IssueNotConfirmed
            | IssueClosed
            | IssueDateOutOfOrder
            | DueDateBeforeStep
            | BodyNotEscalatedTo
            | RedirectTargetInvalid
            | ContactAlreadyRecorded
            | PersonalDataAlreadyErased
            | SubscriptionAlreadyExists
            | UnknownSubscription
            | SubscriptionAlreadyPaused
            | SubscriptionNotStopped
            | SubscriptionAlreadyDisabled
            | SubscriptionHasNoSecret
            | SubscriptionSecretGenerationStale
            | AccountAlreadyExists
            | UnknownAccount
            | AccountRoleUnchanged
            | AccountAlreadyDisabled
            | AccountNotDisabled => StateConflict,
        }
    }

    /// The stable machine code, e.g. `director_already_paired`.
    pub fn code(&self) -> &'static str {
        use Rejection::*;
        match self {
            StateNotLoaded { .. } => "state_not_loaded",
            PersonalDataNotPlain { .. } => "personal_data_not_plain",
            RequiredTextEmpty { .. } => "required_text_empty",
            DateInFuture { .. } => "date_in_future",
            VisitDateInFuture => "visit_date_in_future",
            AmountOverflow => "amount_overflow",
            GiftAmountAboveCap { .. } => "gift_amount_above_cap",
            ModelWorkerAlreadyRegistered => "model_worker_already_registered",
            UnknownModelWorker => "unknown_model_worker",
            ModelWorkerDeceased => "model_worker_deceased",
            ModelWorkerNotInHardship => "model_worker_not_in_hardship",
            HardshipCausesEmpty => "hardship_causes_empty",
            DirectorAlreadyAppointed => "director_already_appointed",
            UnknownDirector => "unknown_director",
            DirectorNotInTerm => "director_not_in_term",
            TermInvalid => "term_invalid",
            TermEndBeforeStart => "term_end_before_start",
            BodyAlreadyRegistered => "body_already_registered",
            UnknownBody => "unknown_body",
            PairingAlreadyExists => "pairing_already_exists",
            UnknownPairing => "unknown_pairing",
            DirectorAlreadyPaired => "director_already_paired",
            ModelWorkerAlreadyPaired => "model_worker_already_paired",
            PairingPeriodOverlaps => "pairing_period_overlaps",
            VisitPolicyInvalid => "visit_policy_invalid",
            PairingAlreadyEnded => "pairing_already_ended",
            PairEndBeforeStart => "pair_end_before_start",
            PairEndBeforeLastActivity => "pair_end_before_last_activity",
            PairingNotActiveOnDate => "pairing_not_active_on_date",
            VisitAlreadyRecorded => "visit_already_recorded",
            UnknownVisit => "unknown_visit",
            VisitModelWorkerMismatch => "visit_model_worker_mismatch",
            VisitNeedsPairingOrAdhocReason => "visit_needs_pairing_or_adhoc_reason",
            VisitHasPairingAndAdhocReason => "visit_has_pairing_and_adhoc_reason",
            VisitWithoutParticipants => "visit_without_participants",
            VisitNeedsOneLead => "visit_needs_one_lead",
            VisitLeadNotActor => "visit_lead_not_actor",
            VisitNotLedByActor => "visit_not_led_by_actor",
            CashGiftWithoutAmount => "cash_gift_without_amount",
            VisitVoided => "visit_voided",
            CorrectionEmpty => "correction_empty",
            IssueAlreadyRaised => "issue_already_raised",
            UnknownIssue => "unknown_issue",
            IssueNotAcknowledged => "issue_not_acknowledged",
            IssueAlreadyAcknowledged => "issue_already_acknowledged",
            IssueNotEscalated => "issue_not_escalated",
            IssueAlreadyResolved => "issue_already_resolved",
            IssueNotResolved => "issue_not_resolved",
            IssueAlreadyConfirmed => "issue_already_confirmed",
            IssueNotConfirmed => "issue_not_confirmed",
            IssueClosed => "issue_closed",
            IssueDateOutOfOrder => "issue_date_out_of_order",
            DueDateBeforeStep => "due_date_before_step",
            BodyNotEscalatedTo => "body_not_escalated_to",
            RedirectTargetInvalid => "redirect_target_invalid",
            ContactAlreadyRecorded => "contact_already_recorded",
            PersonalDataAlreadyErased => "personal_data_already_erased",
            SubscriptionFilterUnknown { .. } => "subscription_filter_unknown",
            SubscriptionFilterTooLong => "subscription_filter_too_long",
            SubscriptionUrlInvalid => "subscription_url_invalid",
            SubscriptionUrlCredentials => "subscription_url_credentials",
            SubscriptionSubjectPrefixInvalid => "subscription_subject_prefix_invalid",
            SubscriptionNameTooLong => "subscription_name_too_long",
            SubscriptionGraceTooLong => "subscription_grace_too_long",
            SubscriptionAlreadyExists => "subscription_already_exists",
            UnknownSubscription => "unknown_subscription",
            SubscriptionAlreadyPaused => "subscription_already_paused",
            SubscriptionNotStopped => "subscription_not_stopped",
            SubscriptionAlreadyDisabled => "subscription_already_disabled",
            SubscriptionHasNoSecret => "subscription_has_no_secret",
            SubscriptionSecretGenerationStale => "subscription_secret_generation_stale",
            AccountRoleNotAllowed => "account_role_not_allowed",
            AccountDirectorMismatch => "account_director_mismatch",
            AccountAlreadyExists => "account_already_exists",
            UnknownAccount => "unknown_account",
            AccountRoleUnchanged => "account_role_unchanged",
            AccountAlreadyDisabled => "account_already_disabled",
            AccountNotDisabled => "account_not_disabled",
        }
    }

    /// The message in Simplified Chinese, for the UI.
    pub fn message_zh(&self) -> String {
        use Rejection::*;
        let s = match self {
            StateNotLoaded { stream } => return format!("内部错误：未加载数据流 {stream}"),
            PersonalDataNotPlain { field } => return format!("个人信息字段 {field} 须为明文"),
            RequiredTextEmpty { field } => return format!("{field} 不能为空"),
            DateInFuture { field } => return format!("{field} 不能晚于今天"),
            VisitDateInFuture => "走访日期不能晚于今天",
            AmountOverflow => "金额合计超出范围",
            GiftAmountAboveCap { field, cap } => {
                return format!("{field} 超过单笔慰问金额上限 {cap} 元");
            }
            ModelWorkerAlreadyRegistered => "该劳模已登记",
            UnknownModelWorker => "未找到该劳模",
            ModelWorkerDeceased => "该劳模已去世",
            ModelWorkerNotInHardship => "该劳模不在困难帮扶名单中",
            HardshipCausesEmpty => "困难认定须至少注明一项致困原因",
            DirectorAlreadyAppointed => "该理事当前任期尚未结束",
            UnknownDirector => "未找到该理事",
            DirectorNotInTerm => "该理事在该日期不在任期内",
            TermInvalid => "任期结束日期不能早于开始日期",
            TermEndBeforeStart => "任期不能在开始之前结束",
            BodyAlreadyRegistered => "该单位已登记",
            UnknownBody => "未找到该单位",
            PairingAlreadyExists => "该结对已存在",
            UnknownPairing => "未找到该结对",
            DirectorAlreadyPaired => "该理事已有在结对的劳模",
            ModelWorkerAlreadyPaired => "该劳模已有结对理事",
            PairingPeriodOverlaps => "结对期间与此前的结对重叠",
            VisitPolicyInvalid => "走访周期设置无效",
            PairingAlreadyEnded => "该结对已结束",
            PairEndBeforeStart => "结对不能在开始之前结束",
            PairEndBeforeLastActivity => "结对结束日期不能早于最近一次走访或联系",
            PairingNotActiveOnDate => "该日期结对不在有效期内",
            VisitAlreadyRecorded => "该走访已记录",
            UnknownVisit => "未找到该走访记录",
            VisitModelWorkerMismatch => "走访或结对属于其他劳模",
            VisitNeedsPairingOrAdhocReason => "走访须关联结对或注明临时走访原因",
            VisitHasPairingAndAdhocReason => "走访不能同时关联结对和临时走访原因",
            VisitWithoutParticipants => "走访须至少有一名参与人",
            VisitNeedsOneLead => "走访须有且仅有一名带队人",
            VisitLeadNotActor => "理事记录的走访须由本人带队",
            VisitNotLedByActor => "理事只能更正或作废本人带队的走访",
            CashGiftWithoutAmount => "慰问金须注明金额",
            VisitVoided => "该走访记录已作废",
            CorrectionEmpty => "更正须至少修改一项内容",
            IssueAlreadyRaised => "该问题已存在",
            UnknownIssue => "未找到该问题",
            IssueNotAcknowledged => "该问题尚未受理",
            IssueAlreadyAcknowledged => "该问题已受理",
            IssueNotEscalated => "该问题尚未反映至相关单位",
            IssueAlreadyResolved => "该问题已解决",
            IssueNotResolved => "该问题尚未解决",
            IssueAlreadyConfirmed => "该问题的解决结果已确认",
            IssueNotConfirmed => "劳模尚未确认解决结果，关闭须注明理由",
            IssueClosed => "该问题已关闭",
            IssueDateOutOfOrder => "日期早于该问题的上一步处理日期",
            DueDateBeforeStep => "期限不能早于办理日期",
            BodyNotEscalatedTo => "该问题未反映至该单位",
            RedirectTargetInvalid => "转办须注明转至单位，其他答复不得注明",
            ContactAlreadyRecorded => "该联系记录已存在",
            PersonalDataAlreadyErased => "该当事人的个人信息已删除",
            SubscriptionFilterUnknown { .. } => "筛选条件中有不存在的事件类型或类别",
            SubscriptionFilterTooLong => "筛选条件最多列出64个事件类型和64个类别",
            SubscriptionUrlInvalid => "推送地址须为带主机名的 https:// 地址，不超过2048字节",
            SubscriptionUrlCredentials => "推送地址中不得包含用户名或密码",
            SubscriptionSubjectPrefixInvalid => {
                "NATS 主题前缀只能由字母、数字、下划线和连字符组成，以点分隔"
            }
            SubscriptionNameTooLong => "订阅名称不得超过100个字符",
            SubscriptionGraceTooLong => "旧密钥的宽限期不得超过一周",
            SubscriptionAlreadyExists => "该订阅已存在",
            UnknownSubscription => "未找到该订阅",
            SubscriptionAlreadyPaused => "该订阅已暂停",
            SubscriptionNotStopped => "该订阅未暂停或停用",
            SubscriptionAlreadyDisabled => "该订阅已停用",
            SubscriptionHasNoSecret => "只有 Webhook 订阅有签名密钥",
            SubscriptionSecretGenerationStale => "密钥已被他人轮换，请刷新后重试",
            AccountRoleNotAllowed => "账户角色只能是管理员、理事或审计员",
            AccountDirectorMismatch => "理事账户须指明所代表的理事，其他账户不得指明",
            AccountAlreadyExists => "该账户已存在",
            UnknownAccount => "账户不存在",
            AccountRoleUnchanged => "该账户已是此角色",
            AccountAlreadyDisabled => "该账户已停用",
            AccountNotDisabled => "该账户未停用",
        };
        s.to_owned()
    }
}
