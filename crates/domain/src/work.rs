//! Work items: task status workflow and priorities.

use std::fmt;
use std::str::FromStr;

use crate::RuleViolation;

/// TODO → IN_PROGRESS → IN_REVIEW → DONE, with the ways back a team uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    Todo,
    InProgress,
    InReview,
    Done,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 4] = [
        TaskStatus::Todo,
        TaskStatus::InProgress,
        TaskStatus::InReview,
        TaskStatus::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Todo => "TODO",
            TaskStatus::InProgress => "IN_PROGRESS",
            TaskStatus::InReview => "IN_REVIEW",
            TaskStatus::Done => "DONE",
        }
    }

    /// Where a task may go from here (staying put is always allowed).
    pub fn next_allowed(self) -> &'static [TaskStatus] {
        use TaskStatus::*;
        match self {
            Todo => &[InProgress],
            InProgress => &[Todo, InReview],
            InReview => &[InProgress, Done],
            Done => &[InProgress],
        }
    }

    pub fn check_transition(self, to: TaskStatus) -> Result<(), RuleViolation> {
        if self == to || self.next_allowed().contains(&to) {
            return Ok(());
        }
        let allowed: Vec<&str> = self.next_allowed().iter().map(|s| s.as_str()).collect();
        Err(RuleViolation::new(
            "invalid_status_transition",
            format!(
                "a task cannot move from {} to {}: tasks move TODO → IN_PROGRESS → IN_REVIEW → DONE, and from {} the next status can be {}",
                self.as_str(),
                to.as_str(),
                self.as_str(),
                allowed.join(" or ")
            ),
        ))
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                format!("unknown task status '{s}': use TODO, IN_PROGRESS, IN_REVIEW or DONE")
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    Low,
    Medium,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Medium,
        Priority::High,
        Priority::Urgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("unknown priority '{s}': use low, medium, high or urgent"))
    }
}

#[cfg(test)]
mod tests {
    use super::TaskStatus::*;
    use super::*;

    #[test]
    fn the_forward_path_and_the_ways_back_are_allowed() {
        for (from, to) in [
            (Todo, InProgress),
            (InProgress, InReview),
            (InReview, Done),
            (InReview, InProgress),
            (InProgress, Todo),
            (Done, InProgress),
            (Done, Done),
        ] {
            assert!(from.check_transition(to).is_ok(), "{from} -> {to}");
        }
    }

    #[test]
    fn skipping_a_step_is_refused_with_the_rule() {
        let err = Todo.check_transition(Done).unwrap_err();
        assert_eq!(err.code, "invalid_status_transition");
        assert!(
            err.message
                .contains("from TODO the next status can be IN_PROGRESS"),
            "{}",
            err.message
        );
        assert!(InProgress.check_transition(Done).is_err());
        assert!(Done.check_transition(Todo).is_err());
    }

    #[test]
    fn statuses_parse_from_wire_names() {
        assert_eq!("IN_REVIEW".parse::<TaskStatus>(), Ok(InReview));
        assert!("in_review".parse::<TaskStatus>().is_err());
        assert_eq!("urgent".parse::<Priority>(), Ok(Priority::Urgent));
    }
}
