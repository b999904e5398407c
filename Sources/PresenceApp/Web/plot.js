// Line plots on a <canvas>: one line per series over a time window, labelled axes, sharp on any devicePixelRatio.

/** Series colours; style.css has the same list as .swatch.c0 … .c7 for the legend. */
export const PALETTE = ["#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];

/** A round upper bound for the y axis: 1, 2 or 5 × 10^n. */
function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  const mantissa = value / power;
  return (mantissa <= 1 ? 1 : mantissa <= 2 ? 2 : mantissa <= 5 ? 5 : 10) * power;
}

function label(value) {
  if (value === 0) return "0";
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 1) return String(Number(value.toFixed(1)));
  return String(Number(value.toPrecision(2)));
}

/**
 * @param {HTMLCanvasElement} canvas
 * @param {object} plot
 * @param {{color: string, points: [number, number][]}[]} plot.series points as [time ms, value]
 * @param {number} plot.tMin
 * @param {number} plot.tMax
 */
export function drawPlot(canvas, { series, tMin, tMax }) {
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 300;
  const height = canvas.clientHeight || 160;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);

  const style = getComputedStyle(canvas);
  const ink = style.color || "#444";
  const grid = style.getPropertyValue("--plot-grid").trim() || "rgba(128, 128, 128, 0.25)";
  const pad = { left: 40, right: 10, top: 8, bottom: 20 };
  const plotW = Math.max(10, width - pad.left - pad.right);
  const plotH = Math.max(10, height - pad.top - pad.bottom);
  const span = Math.max(1, tMax - tMin);

  let top = 0;
  for (const s of series) for (const [, v] of s.points) if (Number.isFinite(v) && v > top) top = v;
  top = niceMax(top);
  const x = (t) => pad.left + ((t - tMin) / span) * plotW;
  const y = (v) => pad.top + plotH - (Math.min(v, top) / top) * plotH;

  ctx.font = `11px ${style.fontFamily || "system-ui, sans-serif"}`;
  ctx.lineWidth = 1;
  ctx.strokeStyle = grid;
  ctx.fillStyle = ink;

  // y: five ticks from 0 to the round maximum.
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i += 1) {
    const value = (top * i) / 4;
    const py = Math.round(y(value)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(pad.left, py);
    ctx.lineTo(pad.left + plotW, py);
    ctx.stroke();
    ctx.fillText(label(value), pad.left - 6, py);
  }
  // x: one tick every two minutes, labelled relative to now.
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const minutes = Math.round(span / 60000);
  for (let m = minutes; m >= 0; m -= 2) {
    const px = Math.round(x(tMax - m * 60000)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(px, pad.top);
    ctx.lineTo(px, pad.top + plotH);
    ctx.stroke();
    ctx.fillText(m === 0 ? "now" : `−${m} min`, Math.min(px, width - 16), pad.top + plotH + 5);
  }

  ctx.save();
  ctx.beginPath();
  ctx.rect(pad.left, pad.top - 2, plotW, plotH + 4);
  ctx.clip();
  ctx.lineWidth = 2;
  ctx.lineJoin = "round";
  for (const s of series) {
    const points = s.points.filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v) && t >= tMin - 5000);
    if (points.length === 0) continue;
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    ctx.beginPath();
    points.forEach(([t, v], i) => (i === 0 ? ctx.moveTo(x(t), y(v)) : ctx.lineTo(x(t), y(v))));
    ctx.stroke();
    if (points.length === 1) {
      ctx.beginPath();
      ctx.arc(x(points[0][0]), y(points[0][1]), 2.5, 0, Math.PI * 2);
      ctx.fill();
    }
  }
  ctx.restore();
}
