-- The reporter role (issue 13): reads models and reports checks, cannot move aliases.
ALTER TABLE role_bindings DROP CONSTRAINT role_bindings_role_check;
ALTER TABLE role_bindings ADD CONSTRAINT role_bindings_role_check
    CHECK (role IN ('viewer', 'writer', 'maintainer', 'admin', 'impersonator', 'reporter'));
