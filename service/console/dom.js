// Building the page's elements and formatting numbers and times for the operator's locale
// and time zone.

const small = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 4 });
const large = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const percent = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });

// Tiny values (a drift test's p-value) in exponent notation: 5.54E-20, not twenty zeros.
const tiny = new Intl.NumberFormat(undefined, { notation: "scientific", maximumSignificantDigits: 3 });

export function number(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  if (value !== 0 && Math.abs(value) < 1e-4) return tiny.format(value);
  return Math.abs(value) >= 10000 ? large.format(value) : small.format(value);
}

export function share(value) {
  return Number.isFinite(value) ? percent.format(value) : "–";
}

const signedPercent = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1, signDisplay: "exceptZero" });

// A relative change, with its sign: "+12.5 %", "−40 %".
export function change(value) {
  return Number.isFinite(value) ? signedPercent.format(value) : "–";
}

const localTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export function utcText(date) {
  return `${date.toISOString().replace(".000Z", "Z")} (UTC)`;
}

// A time in the operator's zone, with UTC on hover.
export function timeElement(iso) {
  const element = document.createElement("time");
  if (!iso) {
    element.textContent = "–";
    return element;
  }
  const date = new Date(iso);
  element.dateTime = date.toISOString();
  element.textContent = localTime.format(date);
  element.title = utcText(date);
  return element;
}

export function localTimeText(date) {
  return localTime.format(date);
}

// --- DOM --------------------------------------------------------------------------------

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}
