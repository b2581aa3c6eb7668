//! Decisions about integrations' subscriptions: creating one, pausing, resuming, rewinding,
//! rotating its secret, disabling and deleting it (`docs/domain.md`, "Subscriptions"). A
//! deleted subscription stays deleted: its id is never reused, so the log never mixes two
//! subscriptions' histories in one stream.

use super::*;
use crate::subscription::{DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS, MAX_NAME_CHARS};

impl Decider<'_> {
    pub(super) fn decide_subscription(&mut self, command: &Command) -> Result<(), Rejection> {
        use Command as K;
        let (id, event): (SubscriptionId, Event) = match command {
            K::CreateSubscription(c) => {
                let state = self.states.subscription(c.subscription_id)?;
                if state.exists || state.deleted {
                    return Err(Rejection::SubscriptionAlreadyExists);
                }
                let name = c.name.trim();
                if name.is_empty() {
                    return Err(Rejection::RequiredTextEmpty { field: "name" });
                }
                if name.chars().count() > MAX_NAME_CHARS {
                    return Err(Rejection::SubscriptionNameTooLong);
                }
                c.delivery.check()?;
                let event = SubscriptionCreated {
                    subscription_id: c.subscription_id,
                    name: name.to_owned(),
                    filter: c.filter.checked()?,
                    start_after: c.start_after,
                    delivery: c.delivery.clone(),
                    owner_token_id: c.owner_token_id,
                    created_on: self.today(),
                };
                (c.subscription_id, event.into())
            }
            K::PauseSubscription(c) => {
                let state = self.live_subscription(c.subscription_id)?;
                if state.paused {
                    return Err(Rejection::SubscriptionAlreadyPaused);
                }
                let event = SubscriptionPaused {
                    subscription_id: c.subscription_id,
                };
                (c.subscription_id, event.into())
            }
            K::ResumeSubscription(c) => {
                let state = self.live_subscription(c.subscription_id)?;
                if !state.paused && !state.disabled {
                    return Err(Rejection::SubscriptionNotStopped);
                }
                let event = SubscriptionResumed {
                    subscription_id: c.subscription_id,
                };
                (c.subscription_id, event.into())
            }
            K::RewindSubscription(c) => {
                self.live_subscription(c.subscription_id)?;
                let event = SubscriptionRewound {
                    subscription_id: c.subscription_id,
                    after: c.after,
                };
                (c.subscription_id, event.into())
            }
            K::RotateSubscriptionSecret(c) => {
                let state = self.live_subscription(c.subscription_id)?;
                if !state.webhook {
                    return Err(Rejection::SubscriptionHasNoSecret);
                }
                if Some(c.generation) != state.generation.checked_add(1) {
                    return Err(Rejection::SubscriptionSecretGenerationStale);
                }
                let grace_seconds = c.grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
                if grace_seconds > MAX_GRACE_SECONDS {
                    return Err(Rejection::SubscriptionGraceTooLong);
                }
                let event = SubscriptionSecretRotated {
                    subscription_id: c.subscription_id,
                    generation: c.generation,
                    grace_seconds,
                };
                (c.subscription_id, event.into())
            }
            K::DisableSubscription(c) => {
                let state = self.live_subscription(c.subscription_id)?;
                if state.disabled {
                    return Err(Rejection::SubscriptionAlreadyDisabled);
                }
                let event = SubscriptionDisabled {
                    subscription_id: c.subscription_id,
                    reason: c.reason,
                };
                (c.subscription_id, event.into())
            }
            K::DeleteSubscription(c) => {
                self.live_subscription(c.subscription_id)?;
                let event = SubscriptionDeleted {
                    subscription_id: c.subscription_id,
                };
                (c.subscription_id, event.into())
            }
            _ => {
                return Err(Rejection::StateNotLoaded {
                    stream: format!("{} is not a subscription command", command.name()),
                });
            }
        };
        self.emit(Category::Subscription, id, event);
        Ok(())
    }

    /// A subscription that exists and is not deleted.
    fn live_subscription(&self, id: SubscriptionId) -> Result<&SubscriptionState, Rejection> {
        let state = self.states.subscription(id)?;
        if !state.exists {
            return Err(Rejection::UnknownSubscription);
        }
        Ok(state)
    }
}
