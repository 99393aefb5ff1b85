//! The original Python scripts' format ("seed"). Being written.
