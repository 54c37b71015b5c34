-- The Cognito Admin API: groups created through it carry Cognito's details (description,
-- precedence, role ARN, last change), and a pool remembers when it was first stored
-- (DescribeUserPool's CreationDate). Older rows keep NULL: "not set".
ALTER TABLE groups ADD COLUMN description TEXT;
ALTER TABLE groups ADD COLUMN precedence INTEGER;
ALTER TABLE groups ADD COLUMN role_arn TEXT;
ALTER TABLE groups ADD COLUMN updated_at INTEGER;
ALTER TABLE pools ADD COLUMN created_at INTEGER;
CREATE INDEX user_groups_group ON user_groups(pool, group_name, username);
