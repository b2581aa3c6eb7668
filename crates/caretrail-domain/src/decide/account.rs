//! Decisions about accounts people sign in with: creating one, changing its role, disabling
//! and enabling it, and recording that its password was set (`docs/domain.md`, "Accounts").
//! The credentials themselves (user name, password hash, failed sign-ins) are not domain
//! state: they live in the HTTP layer's own table, so the log never holds a secret.

use super::*;
use crate::authority::Role;

impl Decider<'_> {
    pub(super) fn decide_account(&mut self, command: &Command) -> Result<(), Rejection> {
        use Command as K;
        let (id, event): (AccountId, Event) = match command {
            K::CreateAccount(c) => {
                if self.states.account(c.account_id)?.exists {
                    return Err(Rejection::AccountAlreadyExists);
                }
                self.check_account_role(c.role, c.director_id)?;
                let event = AccountCreated {
                    account_id: c.account_id,
                    role: c.role,
                    director_id: c.director_id,
                    created_on: self.today(),
                };
                (c.account_id, event.into())
            }
            K::ChangeAccountRole(c) => {
                let state = self.live_account(c.account_id)?;
                if state.role == Some(c.role) && state.director_id == c.director_id {
                    return Err(Rejection::AccountRoleUnchanged);
                }
                self.check_account_role(c.role, c.director_id)?;
                let event = AccountRoleChanged {
                    account_id: c.account_id,
                    role: c.role,
                    director_id: c.director_id,
                };
                (c.account_id, event.into())
            }
            K::DisableAccount(c) => {
                if self.live_account(c.account_id)?.disabled {
                    return Err(Rejection::AccountAlreadyDisabled);
                }
                let event = AccountDisabled {
                    account_id: c.account_id,
                };
                (c.account_id, event.into())
            }
            K::EnableAccount(c) => {
                if !self.live_account(c.account_id)?.disabled {
                    return Err(Rejection::AccountNotDisabled);
                }
                let event = AccountEnabled {
                    account_id: c.account_id,
                };
                (c.account_id, event.into())
            }
            K::SetAccountPassword(c) => {
                self.live_account(c.account_id)?;
                let event = AccountPasswordSet {
                    account_id: c.account_id,
                    reason: c.reason,
                    by: self.ctx.actor.id,
                };
                (c.account_id, event.into())
            }
            _ => return Ok(()),
        };
        self.emit(Category::Account, id, event);
        Ok(())
    }

    /// A created account's state.
    fn live_account(&self, id: AccountId) -> Result<&AccountState, Rejection> {
        let state = self.states.account(id)?;
        if !state.exists {
            return Err(Rejection::UnknownAccount);
        }
        Ok(state)
    }

    /// An account is for a person in one of the three people's roles; a director account
    /// names an appointed director, and only a director account names one.
    fn check_account_role(
        &self,
        role: Role,
        director_id: Option<DirectorId>,
    ) -> Result<(), Rejection> {
        if role == Role::Integration {
            return Err(Rejection::AccountRoleNotAllowed);
        }
        if (role == Role::Director) != director_id.is_some() {
            return Err(Rejection::AccountDirectorMismatch);
        }
        if let Some(d) = director_id
            && !self.states.director(d)?.appointed
        {
            return Err(Rejection::UnknownDirector);
        }
        Ok(())
    }
}
