use super::messages::uid_list;
use super::*;

#[test]
fn patterns() {
    assert!(list_match("*", "a.b"));
    assert!(list_match("%", "a"));
    assert!(!list_match("%", "a.b"));
    assert!(list_match("a.%", "a.b"));
    assert!(list_match("inbox", "INBOX"));
    assert!(list_match("Inbox.*", "INBOX.x"));
    assert!(!list_match("a", "ab"));
    assert!(list_match("*b", "a.b"));
    assert_eq!(special_use("Sent"), Some("\\Sent"));
    assert_eq!(uid_list(&[3, 4, 5]), "3:5");
    assert_eq!(uid_list(&[5, 3]), "5,3");
}
