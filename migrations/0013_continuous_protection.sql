-- Lifeboat catalog, version 13: continuous protection. A schedule with
-- `continuous` = 1 keeps a change journal of the resources its template
-- selects (`journal/<schedule>/` in its location), so a restore can bring
-- them back as they were at any instant since its oldest backup.

ALTER TABLE schedules ADD COLUMN continuous BIGINT NOT NULL DEFAULT 0;
