// Packed with its prebuild and installed where no compiler exists, the package loads.
import { join } from 'node:path';

import { describePrebuiltInstall } from '@logcaster/testkit';

describePrebuiltInstall(join(__dirname, '..', '..'), 'poll');
