-- Role bindings: subject (a principal, or group:<name>) holds role on scope (a model, a prefix*,
-- or * for everything).
CREATE TABLE access.role_bindings (
    binding_id  text PRIMARY KEY,
    subject     text NOT NULL,
    role        text NOT NULL CHECK (role IN ('viewer', 'writer', 'maintainer', 'admin', 'impersonator')),
    scope       text NOT NULL,
    created_by  text NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    UNIQUE (subject, role, scope)
);
