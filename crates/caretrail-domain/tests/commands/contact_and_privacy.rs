//! Daily contacts, and what commands keep out of their errors.

use super::*;

#[test]
fn record_contact_is_accepted() {
    let c = RecordContact {
        contact_id: C,
        pairing_id: P,
        on: date(2021, 10, 20),
        channel: ContactChannel::Wechat,
        note: Some(plain("问候")),
    };
    given(history(paired())).when(c).then([
        (
            stream(Contact, C),
            ContactRecorded {
                contact_id: C,
                pairing_id: P,
                director_id: D,
                model_worker_id: MW,
                on: date(2021, 10, 20),
                channel: ContactChannel::Wechat,
                note: Some(plain("问候")),
            }
            .into(),
        ),
        (
            stream(Pairing, P),
            PairActivityLogged {
                pairing_id: P,
                activity_id: C.0,
                kind: ActivityKind::Contact,
                on: date(2021, 10, 20),
            }
            .into(),
        ),
    ]);
}

#[test]
fn record_contact_refusals() {
    let c = RecordContact {
        contact_id: C,
        pairing_id: P,
        on: date(2021, 10, 20),
        channel: ContactChannel::Phone,
        note: None,
    };
    given(history(world()))
        .when(c.clone())
        .then_err("unknown_pairing");
    given(history(with(paired(), [c.clone().into()])))
        .when(c.clone())
        .then_err("contact_already_recorded");
    given(history(paired()))
        .when(RecordContact {
            on: date(2021, 9, 1),
            ..c.clone()
        })
        .then_err("pairing_not_active_on_date");
    given(history(paired()))
        .when(RecordContact {
            on: date(2021, 11, 9),
            ..c
        })
        .then_err("date_in_future");
}

// ---------- privacy ----------

#[test]
fn erase_personal_data_is_accepted_once() {
    let erase = ErasePersonalData {
        subject_id: MW.0,
        legal_basis: LegalBasis::SubjectRequest,
    };
    given(vec![]).when(erase.clone()).then([(
        stream(Privacy, MW.0),
        PersonalDataErased {
            subject_id: MW.0,
            legal_basis: LegalBasis::SubjectRequest,
            erased_on: date(2021, 11, 1),
        }
        .into(),
    )]);
    given(history(vec![erase.clone().into()]))
        .when(erase)
        .then_err("personal_data_already_erased");
}
