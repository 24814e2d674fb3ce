//! The phases backup and restore rows hold. The engines move them; the
//! catalog stores them and answers by them.

/// Where a backup is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BackupPhase {
    New,
    InProgress,
    Completed,
    PartiallyFailed,
    Failed,
    /// Being deleted: storage first, then the catalog row.
    Deleting,
}

impl BackupPhase {
    const ALL: [Self; 6] = [
        Self::New,
        Self::InProgress,
        Self::Completed,
        Self::PartiallyFailed,
        Self::Failed,
        Self::Deleting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "New",
            Self::InProgress => "InProgress",
            Self::Completed => "Completed",
            Self::PartiallyFailed => "PartiallyFailed",
            Self::Failed => "Failed",
            Self::Deleting => "Deleting",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// Still being written.
    pub fn is_running(self) -> bool {
        matches!(self, Self::New | Self::InProgress)
    }

    /// Finished with a manifest: it can be restored from.
    pub fn is_restorable(self) -> bool {
        matches!(self, Self::Completed | Self::PartiallyFailed)
    }
}

/// Where a restore is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RestorePhase {
    New,
    InProgress,
    /// A dry run's plan is ready; nothing was applied.
    Planned,
    Completed,
    PartiallyFailed,
    Failed,
}

impl RestorePhase {
    const ALL: [Self; 6] = [
        Self::New,
        Self::InProgress,
        Self::Planned,
        Self::Completed,
        Self::PartiallyFailed,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "New",
            Self::InProgress => "InProgress",
            Self::Planned => "Planned",
            Self::Completed => "Completed",
            Self::PartiallyFailed => "PartiallyFailed",
            Self::Failed => "Failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }

    pub fn is_running(self) -> bool {
        matches!(self, Self::New | Self::InProgress)
    }

    pub fn is_finished(self) -> bool {
        !self.is_running()
    }
}

impl std::fmt::Display for RestorePhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
