"""The pages' words in Vietnamese (first) and English, and how they write numbers and dates.

Pure: a language and a value in, text out. Numbers are written as the explanations write them
(`core.explanations.numeral`: 1.234.567 and 3,5 in Vietnamese); dates dd/mm/yyyy in both languages, as
the bank's letters and forms write them.
"""

from __future__ import annotations

from datetime import date

from uythac.core.explanations import numeral

LANGUAGES = ("vi", "en")

ORGS: dict[str, tuple[str, str]] = {
    "HND": ("Hội Nông dân", "Farmers' Union"),
    "HPN": ("Hội Phụ nữ", "Women's Union"),
    "HCCB": ("Hội Cựu chiến binh", "Veterans' Association"),
    "DTN": ("Đoàn Thanh niên", "Youth Union"),
}
CLASSES: dict[str, tuple[str, str]] = {
    "tot": ("Tốt", "Good"),
    "kha": ("Khá", "Fair"),
    "trung_binh": ("Trung bình", "Average"),
    "yeu": ("Yếu", "Weak"),
}
COMPONENTS: dict[str, tuple[str, str]] = {
    "post_disbursement_inspection": ("Kiểm tra sau giải ngân", "Post-disbursement inspection"),
    "periodic_inspection": ("Kiểm tra định kỳ tổ TK&VV", "Periodic inspection of groups"),
    "overdue_ratio": ("Tỷ lệ nợ quá hạn", "Overdue ratio"),
    "inactive_loans": ("Món vay không có giao dịch", "Inactive loans"),
    "savings_activity": ("Hoạt động tiết kiệm", "Savings activity"),
}
DUTIES: dict[str, tuple[str, str]] = {
    "new_loan": ("Kiểm tra sau giải ngân (30 ngày)", "30-day inspection of a new loan"),
    "inactive_loan": ("Kiểm tra món vay không có giao dịch", "Inspection of an inactive loan"),
    "group_of_year": ("Kiểm tra định kỳ tổ TK&VV trong năm", "This year's periodic inspection of a group"),
}
STATUSES: dict[str, tuple[str, str]] = {
    "missed": ("Quá hạn", "Missed"),
    "due_soon": ("Sắp đến hạn", "Due soon"),
    "pending": ("Chưa đến hạn", "Pending"),
    "fulfilled": ("Đã kiểm tra đúng hạn", "Inspected on time"),
}
TEXT: dict[str, tuple[str, str]] = {
    "app": ("Ủy thác — theo dõi kiểm tra", "Uythac — inspection follow-up"),
    "bank": ("Ngân hàng Chính sách xã hội", "Vietnam Bank for Social Policies"),
    "signin": ("Đăng nhập", "Sign in"),
    "signout": ("Đăng xuất", "Sign out"),
    "key": ("Khóa truy cập", "Access key"),
    "key_help": ("Khóa do cán bộ quản trị cấp (bắt đầu bằng uythac_)", "The key your administrator gave you"),
    "bad_key": ("Khóa không đúng.", "This key is not valid."),
    "too_many": (
        "Nhập sai quá nhiều lần. Thử lại sau {seconds} giây.",
        "Too many failed attempts. Retry in {seconds} s.",
    ),
    "signed_in_as": ("Đã đăng nhập", "Signed in as"),
    "area_all": ("toàn tỉnh", "the whole province"),
    "area_district": ("huyện {id}", "district {id}"),
    "area_commune": ("xã {id}", "commune {id}"),
    "province": ("Tỉnh", "Province"),
    "district": ("Huyện", "District"),
    "commune": ("Xã", "Commune"),
    "unit": ("Đơn vị", "Unit"),
    "org": ("Tổ chức hội", "Organization"),
    "loan": ("Món vay", "Loan"),
    "worklist": ("Danh sách cần kiểm tra", "Inspections to do"),
    "as_of": ("Số liệu đến ngày", "Figures as of"),
    "month_end": ("Kỳ (cuối tháng)", "Month end"),
    "today_t": ("hiện tại", "current"),
    "show": ("Xem", "Show"),
    "total": ("Tổng cộng", "Total"),
    "units": ("Số đơn vị", "Units"),
    "distribution": ("Xếp loại chất lượng ủy thác", "Entrustment quality classes"),
    "score": ("Điểm", "Score"),
    "class": ("Xếp loại", "Class"),
    "all": ("Tất cả", "All"),
    "missed_30": ("Không kiểm tra trong 30 ngày", "30-day inspections missed"),
    "due_7": ("Đến hạn trong {days} ngày", "Due within {days} days"),
    "components": ("Năm tiêu chí", "The five components"),
    "points": ("Điểm đạt / tối đa", "Points / maximum"),
    "lost": ("Điểm bị trừ", "Points lost"),
    "nothing_lost": ("Không bị trừ điểm.", "No points lost."),
    "to_inspect": ("Còn phải kiểm tra", "Still to inspect"),
    "flags": ("Món vay không được kiểm tra trong 30 ngày", "Loans not inspected within 30 days"),
    "due_soon": ("Món vay sắp đến hạn kiểm tra", "Loans due for inspection soon"),
    "none": ("Không có.", "None."),
    "history": ("Điểm qua các kỳ cuối tháng", "Score at the kept month ends"),
    "no_history": ("Chưa có kỳ cuối tháng nào được lưu.", "No month end kept yet."),
    "disbursed_on": ("Ngày giải ngân", "Disbursed on"),
    "deadline": ("Hạn kiểm tra", "Deadline"),
    "days_left": ("Còn (ngày)", "Days left"),
    "status": ("Tình trạng", "Status"),
    "inspected_on": ("Ngày kiểm tra", "Inspected on"),
    "late_inspection_on": ("Ngày kiểm tra muộn", "Inspected late on"),
    "group": ("Tổ TK&VV", "Savings-and-loan group"),
    "misuse": ("Sử dụng vốn sai mục đích", "Misused"),
    "yes": ("Có", "Yes"),
    "no": ("Không", "No"),
    "duty": ("Loại kiểm tra", "Duty"),
    "id": ("Mã", "Id"),
    "opened_on": ("Ngày phát sinh", "Opened on"),
    "filter": ("Lọc", "Filter"),
    "sort": ("Sắp xếp", "Sort"),
    "download": ("Tải Excel (.xlsx)", "Download Excel (.xlsx)"),
    "download_flags": ("Tải danh sách quá hạn 30 ngày (.xlsx)", "Download the missed 30-day inspections (.xlsx)"),
    "print": ("In danh sách (A4)", "Print (A4)"),
    "print_hint": (
        "Dùng lệnh In của trình duyệt (Ctrl+P): bản in chỉ gồm danh sách.",
        "Use the browser's Print (Ctrl+P): only the list is printed.",
    ),
    "page": ("Trang {number}/{pages}", "Page {number} of {pages}"),
    "previous": ("Trang trước", "Previous page"),
    "next": ("Trang sau", "Next page"),
    "items": ("{count} việc", "{count} items"),
    "signature": ("Người kiểm tra (ký, ghi rõ họ tên)", "Inspected by (signature, name)"),
    "done_on": ("Ngày kiểm tra", "Date inspected"),
    "not_found": ("Không tìm thấy", "Not found"),
    "not_found_text": (
        "Không có trang này trong phạm vi khóa của bạn.",
        "There is no such page in the area of your key.",
    ),
    "bad_request": ("Yêu cầu không hợp lệ", "Bad request"),
    "back": ("Về trang chính", "Back to the main page"),
    "language": ("English", "Tiếng Việt"),
    "language_title": ("Switch to English", "Chuyển sang tiếng Việt"),
    "skip": ("Bỏ qua, tới nội dung chính", "Skip to the content"),
    "main_nav": ("Điều hướng chính", "Main navigation"),
    "chart": ("Biểu đồ số đơn vị theo xếp loại", "Units by class"),
    "no_clock": ("Chưa có số liệu.", "No figures yet."),
    "place": ("Địa bàn", "Area"),
}


def word(table: dict[str, tuple[str, str]], key: str, language: str) -> str:
    """The word for `key` in `language`; the key itself for one the table lacks (a new org or status)."""
    pair = table.get(key)
    return key if pair is None else pair[LANGUAGES.index(language)]


def number(value: int | float | None, language: str) -> str:
    return "" if value is None else numeral(value, language == "vi")


def day(value: date | str | None) -> str:
    """dd/mm/yyyy from a date or its ISO text; nothing for none."""
    if value is None:
        return ""
    found = value if isinstance(value, date) else date.fromisoformat(value)
    return found.strftime("%d/%m/%Y")
