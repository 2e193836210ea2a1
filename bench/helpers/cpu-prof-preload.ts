// Loaded with `node --import` (NODE_OPTIONS refuses --cpu-prof) when BERTH_BENCH_CPU_PROF_DIR
// is set: profiles the process from its first SIGUSR2 (so start-up and warm-up stay out) and
// writes BERTH_BENCH_CPU_PROF_DIR/<pid>.cpuprofile when it exits.
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env['BERTH_BENCH_CPU_PROF_DIR'];
if (dir) {
  const session = new Session();
  session.connect();
  let started = false;
  process.on('SIGUSR2', () => {
    if (started) return;
    started = true;
    session.post('Profiler.enable');
    // --cpu-prof-interval's default.
    session.post('Profiler.setSamplingInterval', { interval: 1000 });
    session.post('Profiler.start');
  });
  // A same-thread session answers synchronously, so this works inside 'exit'.
  process.on('exit', () => {
    if (!started) return;
    session.post('Profiler.stop', (err, res) => {
      if (!err) writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
