-- SRP sign-in (USER_SRP_AUTH): each user's salt and verifier v = g^x mod N (never the
-- password). NULL until a password is set or the user next signs in with one.
ALTER TABLE users ADD COLUMN srp_salt BLOB;
ALTER TABLE users ADD COLUMN srp_verifier BLOB;
