#![forbid(unsafe_code)]
//! Mailboxes shared by smtpd, pop3d and imapd: Maildir and mbox.
