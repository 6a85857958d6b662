-- Each Modellix account's submits in the last minute (its requests-per-minute gate): one row
-- per submit the admission queue let go with the account's key, written in the same
-- transaction as its intent under the account's row lock; rows older than the minute are
-- deleted as new ones are written, so an account keeps at most its per-minute allowance.
CREATE TABLE admission_account_sends (
    account TEXT NOT NULL,
    sent_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX admission_account_sends_recent ON admission_account_sends (account, sent_at);
