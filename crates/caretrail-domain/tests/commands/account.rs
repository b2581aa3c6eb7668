//! Accounts: creation, role changes, disabling and enabling, and the record of a password set.

use super::*;

const ACC: AccountId = AccountId::from_u128(0xACC0_0001);

fn create(role: Role, director_id: Option<DirectorId>) -> Command {
    CreateAccount {
        account_id: ACC,
        role,
        director_id,
    }
    .into()
}

fn created(role: Role, director_id: Option<DirectorId>) -> (StreamName, Event) {
    (
        stream(Account, ACC),
        AccountCreated {
            account_id: ACC,
            role,
            director_id,
            created_on: date(2021, 11, 1),
        }
        .into(),
    )
}

#[test]
fn create_account_is_accepted_for_the_three_roles_of_people() {
    given(vec![])
        .when(create(Role::Admin, None))
        .then([created(Role::Admin, None)]);
    given(vec![])
        .when(create(Role::Auditor, None))
        .then([created(Role::Auditor, None)]);
    given(history(world()))
        .when(create(Role::Director, Some(D)))
        .then([created(Role::Director, Some(D))]);
}

#[test]
fn create_account_refusals() {
    given(vec![])
        .when(create(Role::Integration, None))
        .then_err("account_role_not_allowed");
    given(vec![])
        .when(create(Role::Director, None))
        .then_err("account_director_mismatch");
    given(history(world()))
        .when(create(Role::Admin, Some(D)))
        .then_err("account_director_mismatch");
    // A director account speaks for a director who exists.
    given(vec![])
        .when(create(Role::Director, Some(D)))
        .then_err("unknown_director");
    given(vec![created(Role::Admin, None)])
        .when(create(Role::Auditor, None))
        .then_err("account_already_exists");
}

#[test]
fn a_role_change_is_recorded_and_an_unchanged_role_is_refused() {
    let mut events = history(world());
    events.push(created(Role::Auditor, None));
    given(events.clone())
        .when(ChangeAccountRole {
            account_id: ACC,
            role: Role::Director,
            director_id: Some(D),
        })
        .then([(
            stream(Account, ACC),
            AccountRoleChanged {
                account_id: ACC,
                role: Role::Director,
                director_id: Some(D),
            }
            .into(),
        )]);
    given(events.clone())
        .when(ChangeAccountRole {
            account_id: ACC,
            role: Role::Auditor,
            director_id: None,
        })
        .then_err("account_role_unchanged");
    given(events)
        .when(ChangeAccountRole {
            account_id: ACC,
            role: Role::Integration,
            director_id: None,
        })
        .then_err("account_role_not_allowed");
    given(vec![])
        .when(ChangeAccountRole {
            account_id: ACC,
            role: Role::Admin,
            director_id: None,
        })
        .then_err("unknown_account");
}

#[test]
fn disable_and_enable_alternate() {
    let disabled = (
        stream(Account, ACC),
        AccountDisabled { account_id: ACC }.into(),
    );
    given(vec![created(Role::Admin, None)])
        .when(DisableAccount { account_id: ACC })
        .then([disabled.clone()]);
    given(vec![created(Role::Admin, None), disabled.clone()])
        .when(DisableAccount { account_id: ACC })
        .then_err("account_already_disabled");
    given(vec![created(Role::Admin, None)])
        .when(EnableAccount { account_id: ACC })
        .then_err("account_not_disabled");
    given(vec![created(Role::Admin, None), disabled])
        .when(EnableAccount { account_id: ACC })
        .then([(
            stream(Account, ACC),
            AccountEnabled { account_id: ACC }.into(),
        )]);
    given(vec![])
        .when(DisableAccount { account_id: ACC })
        .then_err("unknown_account");
}

#[test]
fn a_password_set_records_who_set_it_and_why_never_the_password() {
    given(vec![created(Role::Auditor, None)])
        .when(SetAccountPassword {
            account_id: ACC,
            reason: PasswordSetReason::Reset,
        })
        .then([(
            stream(Account, ACC),
            AccountPasswordSet {
                account_id: ACC,
                reason: PasswordSetReason::Reset,
                by: TEST_ACTOR.id,
            }
            .into(),
        )]);
    given(vec![])
        .when(SetAccountPassword {
            account_id: ACC,
            reason: PasswordSetReason::Changed,
        })
        .then_err("unknown_account");
}
