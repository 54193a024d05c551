-- Promotion gates (issue 13): check reports, protection rules of aliases, approvals.

-- Every report is kept; the latest per (version, check_name) counts.
CREATE TABLE check_reports (
    id          bigserial PRIMARY KEY,
    model_id    text NOT NULL,
    version     bigint NOT NULL,
    check_name  text NOT NULL,
    status      text NOT NULL CHECK (status IN ('PENDING', 'PASSED', 'FAILED')),
    summary     text NOT NULL DEFAULT '',
    details_url text NOT NULL DEFAULT '',
    metrics     jsonb NOT NULL DEFAULT '{}'::jsonb,
    reporter    text NOT NULL,
    report_time timestamptz NOT NULL DEFAULT clock_timestamp(),
    FOREIGN KEY (model_id, version) REFERENCES model_versions (model_id, version)
        ON DELETE CASCADE
);
CREATE INDEX check_reports_latest_idx ON check_reports (model_id, version, check_name, id DESC);

-- scope: a model id, or a prefix ending in '-*'.
CREATE TABLE protection_rules (
    scope                   text NOT NULL,
    alias                   text NOT NULL,
    required_checks         text[] NOT NULL DEFAULT '{}',
    required_approvals      integer NOT NULL DEFAULT 0,
    movers                  text[] NOT NULL DEFAULT '{}',
    required_previous_alias text NOT NULL DEFAULT '',
    rollback_window_s       bigint NOT NULL,
    update_time             timestamptz NOT NULL DEFAULT now(),
    updated_by              text NOT NULL,
    PRIMARY KEY (scope, alias)
);

-- One approval per approver, version and alias; a withdrawal deletes it (the audit log keeps
-- both).
CREATE TABLE approvals (
    model_id    text NOT NULL,
    version     bigint NOT NULL,
    alias       text NOT NULL,
    approver    text NOT NULL,
    comment     text NOT NULL DEFAULT '',
    create_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_id, version, alias, approver),
    FOREIGN KEY (model_id, version) REFERENCES model_versions (model_id, version)
        ON DELETE CASCADE
);

CREATE INDEX alias_history_version_idx ON alias_history (model_id, version);
